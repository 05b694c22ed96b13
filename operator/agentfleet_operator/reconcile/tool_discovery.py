"""MCP tool discovery beside the reconciles, never inside one.

A Connector's reconcile asks for a discovery and returns at once; the discovery runs as its own
task with its own timeout and, when it has an answer, queues the Connector again, whose reconcile
then writes the answer into its status. So a hung MCP server costs one task its timeout and blocks
no worker (kagent's users saw one such server stall every Agent).

A discovery is repeated every `interval` seconds, and at once when what it depends on changes (the
Connector's generation or its Secret's hash: the fingerprint).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .mcp_discovery import DiscoveryResult

log = logging.getLogger(__name__)

Fingerprint = tuple[Any, ...]


@dataclass(frozen=True)
class Attempt:
    fingerprint: Fingerprint
    finished: float  # monotonic seconds
    result: DiscoveryResult


class ToolDiscovery:
    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._latest: dict[Hashable, Attempt] = {}
        self._running: dict[Hashable, tuple[Fingerprint, asyncio.Task[None]]] = {}

    def latest(self, key: Hashable, fingerprint: Fingerprint) -> Attempt | None:
        """The last answer for what the Connector is now; an answer for an older spec or Secret is none."""
        attempt = self._latest.get(key)
        return attempt if attempt is not None and attempt.fingerprint == fingerprint else None

    def due_in(self, key: Hashable, fingerprint: Fingerprint) -> float:
        """Seconds until the next discovery should start; 0 = now."""
        attempt = self.latest(key, fingerprint)
        if attempt is None:
            return 0.0
        return max(0.0, attempt.finished + self.interval - self._clock())

    def running(self, key: Hashable, fingerprint: Fingerprint) -> bool:
        current = self._running.get(key)
        return current is not None and current[0] == fingerprint and not current[1].done()

    def start(
        self,
        key: Hashable,
        fingerprint: Fingerprint,
        discover: Callable[[], Awaitable[DiscoveryResult]],
        done: Callable[[], None],
    ) -> None:
        """Start a discovery unless one for this fingerprint runs; one for an older one is cancelled."""
        if self.running(key, fingerprint):
            return
        old = self._running.pop(key, None)
        if old is not None:
            old[1].cancel()

        async def run() -> None:
            try:
                result = await discover()
            except asyncio.CancelledError:
                raise
            except Exception:  # discover() reports failures as results; anything else is our bug
                log.exception("tool discovery of %s failed", key)
                return
            self._latest[key] = Attempt(fingerprint, self._clock(), result)
            done()

        task = asyncio.create_task(run(), name=f"tool-discovery-{key}")
        self._running[key] = (fingerprint, task)
        task.add_done_callback(lambda finished: self._finished(key, finished))

    def _finished(self, key: Hashable, task: asyncio.Task[None]) -> None:
        current = self._running.get(key)
        if current is not None and current[1] is task:
            del self._running[key]

    def forget(self, key: Hashable) -> None:
        self._latest.pop(key, None)
        current = self._running.pop(key, None)
        if current is not None:
            current[1].cancel()

    async def aclose(self) -> None:
        tasks = [task for _, task in self._running.values()]
        self._running.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
