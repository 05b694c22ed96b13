"""One overall deadline per request: the whole time a caller waits for the model, retries included.

Without it a slow model was retried attempt after attempt (30 s each, four of them) and the caller
waited about two minutes for a 504, longer than most ingress timeouts. The budget is the Agent's
spec.model.timeoutSeconds (config `model.deadlineSeconds`), or the caller's own timeout when that is
shorter: `X-Request-Timeout` (seconds), or `X-Stainless-Read-Timeout`, which the OpenAI SDKs send
on every request (their read timeout, 600 s by default). It covers every model call of the request
and the tool calls between them; each attempt waits at most min(remaining budget,
model.timeoutSeconds), and a retry whose backoff would end past the deadline is not started.
When it passes, the caller gets 504 `model_timeout` saying what took the time: the attempts made,
the last error and what was running.

No deadline at all (neither the Agent nor the caller sets one) keeps the per-attempt behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from .config import ModelConfig
from .errors import UpstreamError, bad_request

CALLER_HEADERS = ("X-Request-Timeout", "X-Stainless-Read-Timeout")
# The deadline whose bound block is running: a call to another Agent passes what is left of it on
# (X-Request-Timeout), so the Agent asked gives up when its answer could no longer be used.
current_deadline: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("deadline", default=None)


@dataclass
class Deadline:
    budget: float
    source: str
    expires: float = field(default=0.0)  # the event loop's clock (monotonic)
    attempts: int = 0
    last_error: str | None = None
    activity: str = "waiting for the model"

    @classmethod
    def start(cls, budget: float, source: str) -> Deadline:
        return cls(budget, source, asyncio.get_running_loop().time() + budget)

    def remaining(self) -> float:
        return self.expires - asyncio.get_running_loop().time()

    def attempt_timeout(self, per_attempt: float) -> float:
        """How long the next attempt may wait; raises the 504 when nothing is left."""
        remaining = self.remaining()
        if remaining <= 0:
            raise self.exceeded()
        return min(per_attempt, remaining)

    def exceeded(self) -> UpstreamError:
        done = f"{self.attempts} model attempt{'s' if self.attempts != 1 else ''}"
        last = f", the last {self.last_error}" if self.last_error else ""
        return UpstreamError(
            f"no answer within the {self.budget:g} s deadline ({self.source}): {done}{last}; "
            f"{self.activity} when it passed",
            code="model_timeout",
            status=504,
        )

    @contextlib.asynccontextmanager
    async def bound(self, activity: str) -> AsyncIterator[None]:
        """Run the block until the deadline; past it, the block is cancelled and the 504 raised."""
        self.activity = activity
        token = current_deadline.set(self)
        try:
            async with asyncio.timeout_at(self.expires):
                yield
        except TimeoutError:
            raise self.exceeded() from None
        finally:
            current_deadline.reset(token)


@contextlib.asynccontextmanager
async def bounded(deadline: Deadline | None, activity: str) -> AsyncIterator[None]:
    """`deadline.bound(activity)`, or no bound when the request has no deadline."""
    if deadline is None:
        yield
        return
    async with deadline.bound(activity):
        yield


def _header_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise bad_request(f"{name} header must be a positive number of seconds", "invalid_timeout", param=name)
    return seconds


def request_deadline(model: ModelConfig, headers: Mapping[str, str]) -> Deadline | None:
    """The request's deadline: the smallest of the Agent's budget and the caller's timeout headers."""
    candidates: list[tuple[float, str]] = []
    if model.deadline_seconds is not None:
        candidates.append((float(model.deadline_seconds), "spec.model.timeoutSeconds"))
    for name in CALLER_HEADERS:  # Starlette's headers are case-insensitive; a plain dict is lower-case
        value = headers.get(name, headers.get(name.lower()))
        if value is not None:
            candidates.append((_header_seconds(name, value), f"{name} header"))
    if not candidates:
        return None
    budget, source = min(candidates)
    return Deadline.start(budget, source)
