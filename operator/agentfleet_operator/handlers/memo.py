"""The one wired object kopf hands every handler as `memo` (kopf's docs/memos.rst): made in main.py
before kopf starts, filled in by the startup handler, emptied by the cleanup handler.

kopf gives each watched object a shallow copy of it, so every handler sees the same store, queue
and config; nothing here is a module global."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..config import OperatorConfig
from ..kube.leader import LeaderElector
from ..kube.workqueue import WorkQueue
from ..reconcile.context import Context
from ..reconcile.store import Store


@dataclass
class OperatorMemo:
    config: OperatorConfig
    store: Store = field(default_factory=Store)
    queue: WorkQueue = field(default_factory=WorkQueue)
    # What an Agent event must differ in to deserve a reconcile (handlers/triggers.py).
    agent_fingerprints: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    # Set by the startup handler, released by the cleanup handler.
    ctx: Context | None = None
    elector: LeaderElector | None = None
    election: asyncio.Task[None] | None = None
    probes: web.AppRunner | None = None

    @classmethod
    def wired(cls, config: OperatorConfig) -> OperatorMemo:
        return cls(config=config, queue=WorkQueue(workers=config.workers))
