"""How long to wait before retrying a call to the model or to a Connector.

One function for both, so both honour a server's `Retry-After` the same way: as delta-seconds
("120") or as an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"), never longer than the caller's cap
(a hostile or confused server must not park a request for an hour). Without a usable header the
wait is exponential backoff with jitter, so the pods of an Agent do not retry in lockstep.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff `base * 2**(attempt-1)` capped at `backoff_cap`; `Retry-After` capped at `retry_after_cap`."""

    base: float
    backoff_cap: float
    retry_after_cap: float


# A model call is expensive and providers ask for long pauses under load; a tool call happens
# inside a user's request, so it waits less.
MODEL_RETRIES = RetryPolicy(base=0.5, backoff_cap=8.0, retry_after_cap=30.0)
TOOL_RETRIES = RetryPolicy(base=0.1, backoff_cap=2.0, retry_after_cap=5.0)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """The wait a `Retry-After` header asks for, in seconds (>= 0); None when absent or unreadable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": an HTTP-date is always UTC
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):  # float() reads "nan"; treat it as "now" rather than poison min()/max()
        return 0.0
    return max(0.0, seconds)  # a date in the past, or a negative number, means "now"


def retry_delay(
    attempt: int,
    retry_after: str | None,
    policy: RetryPolicy,
    *,
    jitter: Callable[[], float] = random.random,
    now: float | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (1-based)."""
    asked = retry_after_seconds(retry_after, now=now)
    if asked is not None:
        return min(policy.retry_after_cap, asked)
    return min(policy.backoff_cap, policy.base * 2 ** (attempt - 1)) * (0.5 + jitter() / 2)
