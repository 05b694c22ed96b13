"""Durations as the API writes them, and the times the status carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from agentfleet_operator.api.base import DURATION
from agentfleet_operator.rollout.durations import format_time, parse_duration, parse_time, promql_duration
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60s", timedelta(seconds=60)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        ("1m30s250ms", timedelta(seconds=90.25)),
        ("0s", timedelta(0)),
        ("0.1s", timedelta(milliseconds=100)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "60", "s", "5 m", "1d", "-5s", "1h-30m", "5M", "1.s", "ms"])
def test_parse_duration_rejects_what_the_schema_rejects(text: str) -> None:
    import re

    assert not re.match(DURATION, text)
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["ms", "s", "m", "h"])), min_size=1, max_size=4))
def test_parse_duration_sums_its_parts(parts: list[tuple[int, str]]) -> None:
    unit = {
        "ms": timedelta(milliseconds=1),
        "s": timedelta(seconds=1),
        "m": timedelta(minutes=1),
        "h": timedelta(hours=1),
    }
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration(text) == sum((n * unit[u] for n, u in parts), timedelta(0))


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=30), "30s"),
        (timedelta(minutes=90), "5400s"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(0), "1ms"),
    ],
)
def test_promql_duration_has_no_decimals(delta: timedelta, expected: str) -> None:
    assert promql_duration(delta) == expected


def test_times_are_rfc3339_utc() -> None:
    moment = datetime(2025, 3, 1, 10, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2025-03-01T08:00:00Z"
    assert format_time(moment + timedelta(milliseconds=500)) == "2025-03-01T08:00:00.500000Z"
    assert parse_time("2025-03-01T08:00:00Z") == datetime(2025, 3, 1, 8, tzinfo=UTC)
    assert parse_time(format_time(moment)) == moment
    assert parse_time("2025-03-01T08:00:00.5+00:00") == datetime(2025, 3, 1, 8, 0, 0, 500000, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("") is None and parse_time("yesterday") is None
