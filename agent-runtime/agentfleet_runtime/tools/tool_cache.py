"""Results of GET tools with `cacheSeconds`, reused by calls with the same arguments.

Per pod and in memory, on purpose: a tool's result is the system's data as it is (a customer record,
an order), which redaction would spoil for the model and which must not be written to a shared store
in plain text. One runtime process is one revision of one Agent, so a result never reaches another
Agent; the key is (connector, tool, arguments as canonical JSON). Only successful calls are kept,
each for its tool's seconds, at most MAX_ENTRIES at a time (the oldest stored goes first).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

MAX_ENTRIES = 1024  # results are capped at 16k characters (toolbox.MAX_RESULT_CHARS): 16 MB at most

MISSING = object()  # what get() returns for no (live) entry: None may be a tool's data


def tool_cache_key(connector: str, tool: str, arguments: dict[str, Any]) -> str:
    return json.dumps([connector, tool, arguments], sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class ToolResultCache:
    def __init__(self, *, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[Any, float]] = {}
        self._max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any:
        """The cached data, or MISSING."""
        found = self._entries.get(key)
        if found is None:
            return MISSING
        data, expires_at = found
        if expires_at <= self._clock():
            del self._entries[key]
            return MISSING
        return data

    def put(self, key: str, data: Any, seconds: float) -> None:
        now = self._clock()
        self._entries.pop(key, None)
        self._entries[key] = (data, now + seconds)
        if len(self._entries) > self._max_entries:
            # Tools keep results for different times: drop what has expired, then the oldest stored.
            for stale in [k for k, (_, expires_at) in self._entries.items() if expires_at <= now]:
                del self._entries[stale]
            while len(self._entries) > self._max_entries:
                del self._entries[next(iter(self._entries))]
