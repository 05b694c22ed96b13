"""A work queue in the manner of client-go's: each key is queued at most once, processed by one
worker at a time (a key that changes while being processed runs again afterwards), and can be
re-queued after a delay. Bursts of events for one object collapse into one reconcile.

It knows nothing of our kinds: keys are opaque, and the reconciler is given when the workers start,
so the queue can exist (and collect keys) before the API client does, and a standby replica can
queue events while another holds the lease."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Reconciler = Callable[[Hashable], Awaitable[float | None]]


class WorkQueue:
    def __init__(self, workers: int = 8) -> None:
        self._reconcile: Reconciler | None = None
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._active: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._workers_count = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._failures: dict[Hashable, int] = {}

    def start(self, reconcile: Reconciler) -> None:
        self._reconcile = reconcile
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._worker(), name=f"reconcile-{i}") for i in range(self._workers_count)
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def add(self, key: Hashable) -> None:
        if key in self._active:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        timer = self._timers.get(key)
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if timer is not None and timer.when() <= when:
            return  # an earlier wake-up is already planned
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def __len__(self) -> int:
        return len(self._queued) + len(self._active)

    async def _worker(self) -> None:
        reconcile = self._reconcile
        assert reconcile is not None, "start() sets the reconciler before any worker runs"
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                requeue = await reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                requeue = min(0.5 * 2 ** min(failures, 8), 120.0)  # back off, never a retry storm
                log.exception("reconcile of %s failed (attempt %d); retrying in %.1fs", key, failures, requeue)
            finally:
                self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
            elif requeue is not None:
                self.add_after(key, requeue)
