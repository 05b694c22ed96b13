"""What every reconciler shares: the API client, operator settings, the queue and the clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..kube.client import KubeClient, post_event
from ..rollout import AnalysisProvider
from .store import STORE, Store


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Settings:
    runtime_image: str = "ghcr.io/agentfleet/agentfleet-runtime:0.1.0"
    redis_image: str = "redis:7.2-alpine"
    # An external Redis is dialled this often (and on every change of the policy or its Secret).
    store_probe_seconds: float = 15.0
    store_probe_timeout: float = 3.0


@dataclass
class Context:
    client: KubeClient
    settings: Settings = field(default_factory=Settings)
    store: Store = STORE
    analysis: AnalysisProvider | None = None

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        await post_event(self.client, involved, type_, reason, message, rfc3339(self.now()))
