"""The operator's Prometheus metrics (names are part of the monitoring contract in manifests/)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge, Histogram

RECONCILES = PromCounter("agentfleet_reconcile_total", "Reconciles by kind and result.", ["kind", "result"])
RECONCILE_SECONDS = Histogram(
    "agentfleet_reconcile_duration_seconds",
    "Reconcile duration.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = PromCounter("agentfleet_reconcile_errors_total", "Reconciles that ended in a problem.", ["kind", "reason"])
MANAGED = Gauge("agentfleet_managed_objects", "Managed objects by kind and phase.", ["kind", "phase"])
API_REQUESTS = Gauge("agentfleet_api_requests", "API requests issued by the operator since start.", ["verb"])
ROLLOUT_WEIGHT = Gauge("agentfleet_rollout_weight", "Canary traffic weight.", ["namespace", "agent"])
ROLLOUT_PHASE = Gauge("agentfleet_rollout_phase", "Rollout phase (1 = current).", ["namespace", "agent", "phase"])
ANALYSIS = PromCounter(
    "agentfleet_analysis_measurements_total", "Canary measurements by verdict.", ["namespace", "agent", "verdict"]
)

_phases: dict[tuple[str, str], str] = {}


def observe_reconcile(kind: str, started: dt.datetime, ended: dt.datetime, error: str | None) -> None:
    RECONCILE_SECONDS.labels(kind).observe((ended - started).total_seconds())
    RECONCILES.labels(kind, "error" if error else "ok").inc()
    if error:
        ERRORS.labels(kind, error).inc()


def set_agent_phase(key: tuple[str, str], phase: str | None) -> None:
    if phase is None:
        _phases.pop(key, None)
    else:
        _phases[key] = phase
    counts = Counter(_phases.values())
    for name in ("Pending", "Progressing", "Paused", "Ready", "Degraded", "Failed"):
        MANAGED.labels("Agent", name).set(counts.get(name, 0))


def export_api_requests(requests: Counter[str]) -> None:
    for verb, count in requests.items():
        API_REQUESTS.labels(verb).set(count)
