"""The one retry delay of model and tool calls: Retry-After in both forms, capped; else backoff."""

from __future__ import annotations

import email.utils

import pytest
from agentfleet_runtime.retry_delay import MODEL_RETRIES, TOOL_RETRIES, RetryPolicy, retry_after_seconds, retry_delay
from hypothesis import given
from hypothesis import strategies as st

NOW = 1_700_000_000.0


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("nan", 0.0),
        ("inf", float("inf")),
        (http_date(NOW + 12), 12.0),
        (http_date(NOW - 60), 0.0),
        ("Tue, 14 Nov 2023 22:13:32 -0000", 12.0),
    ],  # -0000: no zone given, read as UTC
)
def test_retry_after_in_both_forms(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "   ", "soon", "Tuesday", "12 parsecs"])
def test_absent_or_unreadable_retry_after_is_none(header: str | None) -> None:
    assert retry_after_seconds(header, now=NOW) is None


def test_retry_after_is_capped_per_policy() -> None:
    assert retry_delay(1, "3600", MODEL_RETRIES) == MODEL_RETRIES.retry_after_cap == 30.0
    assert retry_delay(1, "3600", TOOL_RETRIES) == TOOL_RETRIES.retry_after_cap == 5.0
    assert retry_delay(1, http_date(NOW + 3600), TOOL_RETRIES, now=NOW) == 5.0
    # Honoured even beyond the backoff cap: the server knows when it will be back.
    assert retry_delay(1, "20", MODEL_RETRIES) == 20.0 > MODEL_RETRIES.backoff_cap


def test_an_unreadable_header_falls_back_to_backoff() -> None:
    assert retry_delay(2, "soon", MODEL_RETRIES, jitter=lambda: 1.0) == 1.0


@given(attempt=st.integers(1, 60), jitter=st.floats(0, 1))
def test_backoff_doubles_with_jitter_and_stays_under_the_cap(attempt: int, jitter: float) -> None:
    policy = RetryPolicy(base=0.1, backoff_cap=2.0, retry_after_cap=5.0)
    delay = retry_delay(attempt, None, policy, jitter=lambda: jitter)
    full = min(policy.backoff_cap, policy.base * 2 ** (attempt - 1))
    assert full / 2 <= delay <= full
