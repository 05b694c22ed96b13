"""Token bucket and circuit breaker, driven by a hand-moved clock."""

from __future__ import annotations

from agentfleet_runtime.tools.breaker import BreakerState, CircuitBreaker
from agentfleet_runtime.tools.ratelimit import TokenBucket

from tests.fakes.clock import FakeClock


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock=clock)
    assert bucket.try_acquire() == 0
    assert bucket.try_acquire() == 0
    wait = bucket.try_acquire()
    assert wait > 0
    clock.advance(wait)
    assert bucket.try_acquire() == 0


def test_bucket_never_exceeds_its_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1.0, capacity=3, clock=clock)
    clock.advance(100)
    granted = 0
    while bucket.try_acquire() == 0:
        granted += 1
    assert granted == 3


def test_bucket_below_one_per_second_still_allows_one() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0.5, clock=clock)
    assert bucket.try_acquire() == 0
    assert bucket.try_acquire() == 2.0


async def test_acquire_gives_up_when_the_wait_exceeds_the_budget() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0.1, clock=clock)
    assert await bucket.acquire(max_wait=0)
    assert not await bucket.acquire(max_wait=1)


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, clock=FakeClock())
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_half_open_lets_one_trial_through_and_its_outcome_decides() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    breaker.record_failure()
    assert breaker.retry_after() == 5
    clock.advance(5)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # only one trial at a time
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(5)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
