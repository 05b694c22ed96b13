"""One work-queue key → the reconciler of its kind. The queue's keys are (kind, namespace, name)."""

from __future__ import annotations

from collections.abc import Hashable

from . import metrics
from .agent import reconcile_agent
from .connector import reconcile_connector
from .context import Context
from .statepolicy import reconcile_state_policy


async def reconcile_key(ctx: Context, key: Hashable) -> float | None:
    """Seconds until this key wants another look, or None."""
    kind, namespace, name = key  # type: ignore[misc]
    try:
        if kind == "Agent":
            return await reconcile_agent(ctx, namespace, name)
        if kind == "Connector":
            return await reconcile_connector(ctx, namespace, name)
        if kind == "StatePolicy":
            return await reconcile_state_policy(ctx, namespace, name)
        return None
    finally:
        metrics.export_api_requests(ctx.client.requests)
