"""Per-process session storage for development and for stateless-by-default pods."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Cached answers one pod keeps at most; beyond it the oldest stored goes first.
MAX_VALUES = 10_000


@dataclass
class _Entry:
    records: list[bytes]
    expires_at: float


class InMemoryBackend:
    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_turns: int,
        clock: Callable[[], float] = time.monotonic,
        max_values: int = MAX_VALUES,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_turns = max_turns
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._writes = 0
        # Single values with a fixed expiry (the answer cache), oldest first.
        self._values: dict[str, tuple[bytes, float]] = {}
        self._max_values = max_values

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

    async def get_value(self, key: str) -> bytes | None:
        found = self._values.get(key)
        if found is None:
            return None
        value, expires_at = found
        if expires_at <= self._clock():
            del self._values[key]
            return None
        return value

    async def set_value(self, key: str, value: bytes, ttl_seconds: int) -> None:
        now = self._clock()
        self._values.pop(key, None)  # re-inserted last: the order is the order of storing
        self._values[key] = (value, now + ttl_seconds)
        # One cache writes with one TTL, so the oldest stored is also the first to expire: drop from
        # the front what has expired, and whatever is beyond the bound.
        while self._values:
            oldest = next(iter(self._values))
            if len(self._values) <= self._max_values and self._values[oldest][1] > now:
                break
            del self._values[oldest]

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._entries.clear()
        self._values.clear()
