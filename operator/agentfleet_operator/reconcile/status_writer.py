"""The one way a reconciler writes a user object's status: observedGeneration, the conditions merged
with the stored ones (lastTransitionTime moves only on a flip), and nothing at all when the merge patch
would be empty, so a reconcile that finds nothing new writes nothing and posts no Event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..api.base import API_VERSION
from ..builders.conditions import Cond, merge_conditions, status_patch
from .context import Context, rfc3339

Event = tuple[str, str, str]  # (type, reason, message)


async def write_status(
    ctx: Context,
    involved: dict[str, Any],
    old: dict[str, Any],
    generation: int | None,
    fields: dict[str, Any],
    conds: Sequence[Cond],
    events: Sequence[Event] = (),
    *,
    validate: Callable[[dict[str, Any]], object] | None = None,
    remember: bool = False,
) -> bool:
    """Patch the status subresource of `involved` (apiVersion, kind, metadata) and post `events` when
    it changed. validate: checks our own output before it reaches the API server. remember: keep the
    written status for the next reconcile (Store.remember_status explains why the Agent needs it).
    True when something was written."""
    new = dict(fields)
    new["observedGeneration"] = generation
    new["conditions"] = merge_conditions(old.get("conditions", []), list(conds), generation, rfc3339(ctx.now()))
    patch = status_patch(old, new)
    if not patch:
        return False
    if validate is not None:
        validate(new)
    meta = involved["metadata"]
    key = (meta["namespace"], meta["name"])
    written = await ctx.client.patch_status(API_VERSION, involved["kind"], *key, patch)
    if remember and written is not None:
        ctx.store.remember_status(key, written["metadata"]["resourceVersion"], written.get("status") or {})
    for type_, reason, message in events:
        await ctx.event(involved, type_, reason, message)
    return True


def ready_change_events(old: dict[str, Any], ready: Cond) -> list[Event]:
    """One Event when Ready's status or reason differs from the stored one (Connector, StatePolicy)."""
    old_ready = next((c for c in old.get("conditions", []) if c.get("type") == "Ready"), {})
    new_status = "Unknown" if ready.status is None else ("True" if ready.status else "False")
    if (old_ready.get("status"), old_ready.get("reason")) == (new_status, ready.reason):
        return []
    return [("Normal" if ready.status else "Warning", ready.reason, ready.message)]
