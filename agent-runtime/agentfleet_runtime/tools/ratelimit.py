"""A token bucket per connector, so one busy agent cannot flood a customer's system."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # A burst of one second's worth, at least one request.
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_acquire(self) -> float:
        """Take a token now and return 0, or return how long until one is available."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    async def acquire(self, max_wait: float) -> bool:
        """Wait for a token up to `max_wait` seconds; False means the caller should give up."""
        async with self._lock:  # queue fairly instead of waking every waiter at once
            wait = self.try_acquire()
            if wait == 0:
                return True
            if wait > max_wait:
                return False
            await asyncio.sleep(wait)
            return self.try_acquire() == 0
