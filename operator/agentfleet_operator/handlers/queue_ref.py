"""The running work queue, set at operator start-up (handlers enqueue into it)."""

from __future__ import annotations

from collections.abc import Hashable

from ..reconcile.queue import WorkQueue

_queue: WorkQueue | None = None


def set_queue(queue: WorkQueue | None) -> None:
    global _queue
    _queue = queue


def enqueue(key: Hashable) -> None:
    if _queue is not None:
        _queue.add(key)
