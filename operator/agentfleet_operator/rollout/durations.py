"""Go-style durations ("60s", "5m", "1h30m", "500ms", "1.5h") as the API writes them.

The CRD schema already rejects anything else (api.base.DURATION); this parser is the one place
that turns the accepted text into time, and renders windows in a form PromQL accepts
(PromQL takes no decimals, so 1.5m must become 90s).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_WHOLE = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$")


def parse_duration(text: str) -> timedelta:
    """Parse a duration; ValueError for anything the API schema would not accept."""
    text = text.strip()
    if not _WHOLE.match(text):
        raise ValueError(f"invalid duration {text!r}: expected e.g. 60s, 5m, 1h30m or 500ms")
    # Sum in milliseconds so 0.1s + 0.2s does not pick up float noise before the timedelta.
    millis = sum(float(number) * _UNIT_MS[unit] for number, unit in _PART.findall(text))
    return timedelta(milliseconds=round(millis))


def promql_duration(delta: timedelta) -> str:
    """Render a duration as a PromQL range ("30s", "1500ms"); at least 1ms."""
    millis = max(1, round(delta.total_seconds() * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, keeping sub-seconds only when there are any (500ms pauses)."""
    moment = as_utc(moment)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """Parse an RFC 3339 time from status; None when absent or unreadable (status can be edited)."""
    if not text:
        return None
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC: the operator's clocks are all UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
