"""Per-process session storage for development and for stateless-by-default pods."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    records: list[bytes]
    expires_at: float


class InMemoryBackend:
    def __init__(self, *, ttl_seconds: float, max_turns: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max_turns = max_turns
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._writes = 0

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def _sweep(self, now: float) -> None:
        # Expired sessions that are never read again would otherwise stay forever.
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]

    async def load(self, key: str) -> list[bytes]:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None:
            return []
        entry.expires_at = now + self._ttl
        return list(entry.records)

    async def append(self, key: str, records: list[bytes]) -> None:
        now = self._clock()
        entry = self._live(key, now)
        if entry is None:
            entry = self._entries[key] = _Entry([], now)
        entry.records.extend(records)
        del entry.records[: -self._max_turns]
        entry.expires_at = now + self._ttl
        self._writes += 1
        if self._writes % 1000 == 0:
            self._sweep(now)

    async def delete(self, key: str) -> bool:
        return self._entries.pop(key, None) is not None

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._entries.clear()
