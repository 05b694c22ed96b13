"""What every reconciler shares: the API client, the operator's settings, its view of the cluster,
the way to ask for another reconcile, and the clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from ..config import OperatorConfig
from ..kube.client import KubeClient, post_event
from ..rollout import AnalysisProvider
from .store import Store
from .tool_discovery import ToolDiscovery


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Context:
    client: KubeClient
    config: OperatorConfig
    store: Store
    # Queue a key (kind, namespace, name) for a reconcile of its own: the work queue's `add`.
    enqueue: Callable[[Hashable], None]
    analysis: AnalysisProvider | None = None
    # MCP Connectors' tools/list, run beside the reconciles (reconcile/tool_discovery.py).
    discovery: ToolDiscovery = field(default_factory=lambda: ToolDiscovery(interval=60.0))

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        await post_event(
            self.client, involved, type_, reason, message, rfc3339(self.now()), instance=self.config.reporting_instance
        )
