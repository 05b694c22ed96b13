"""Token bucket and circuit breaker, driven by a hand-moved clock; each connector's breaker
built from its `circuitBreaker` thresholds."""

from __future__ import annotations

import httpx
import pytest
from agentfleet_operator.api.connector import DEFAULT_BREAKER_FAILURES, DEFAULT_BREAKER_OPEN_SECONDS
from agentfleet_runtime.config import ConnectorConfig
from agentfleet_runtime.tools.breaker import BreakerState, CircuitBreaker
from agentfleet_runtime.tools.ratelimit import TokenBucket
from agentfleet_runtime.tools.toolbox import build_client
from pydantic import ValidationError

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


CONNECTORS = {
    "http": {"endpoint": "http://crm:8080", "tools": [{"name": "lookup"}]},
    "webhook": {"endpoint": "http://hooks:8080", "tools": [{"name": "notify"}]},
    "mcp": {"endpoint": "http://orders:8080/mcp"},
    "agent": {"endpoint": "http://billing:8080", "agent": "billing"},
}


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
async def test_every_connector_type_builds_its_breaker_from_the_connector(kind: str) -> None:
    base = {"name": "c", "type": kind, **CONNECTORS[kind]}
    async with httpx.AsyncClient() as http:
        configured = build_client(
            ConnectorConfig.model_validate({**base, "circuitBreaker": {"failures": 2, "openSeconds": 1}}), http
        )
        default = build_client(ConnectorConfig.model_validate(base), http)
    assert (configured.breaker.failure_threshold, configured.breaker.reset_timeout) == (2, 1)
    assert (default.breaker.failure_threshold, default.breaker.reset_timeout) == (5, 30.0)


def test_the_connector_api_documents_the_runtimes_defaults() -> None:
    default = CircuitBreaker()
    assert (
        default.failure_threshold,
        default.reset_timeout,
    ) == (DEFAULT_BREAKER_FAILURES, DEFAULT_BREAKER_OPEN_SECONDS)


@pytest.mark.parametrize("bad", [{"failures": 0, "openSeconds": 1}, {"failures": 2, "openSeconds": 0}, {"failures": 2}])
def test_the_runtime_refuses_breaker_thresholds_it_cannot_use(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="circuitBreaker"):
        ConnectorConfig.model_validate({"name": "c", "type": "http", "endpoint": "http://crm", "circuitBreaker": bad})
