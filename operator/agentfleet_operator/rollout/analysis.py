"""Canary analysis: measure the canary against its thresholds and against stable, honestly.

What users of Argo Rollouts and Flagger were hurt by, and what this module does instead:
an empty result crashed a rollout or counted as success (argo-rollouts#1466, #4479) -> no data, NaN,
Inf, an HTTP error, a timeout or an unreachable Prometheus is Inconclusive, never Passed; low traffic
passed on a handful of requests -> fewer than minRequests is Inconclusive; a canary blamed for what
the whole service suffers -> canary and stable are measured over the same window (same `time`), and
a canary over its threshold but no worse than stable is Inconclusive, not Failed. Every measurement
carries the exact query and value so `kubectl get agent -o yaml` shows why.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx

from agentfleet_operator.api.agent import AnalysisMeasurement, AnalysisSpec

from .durations import format_time, parse_duration, promql_duration

REQUESTS = "agent_requests_total"
DURATION_BUCKETS = "agent_request_duration_seconds_bucket"
_MAX_WHY = 300

Verdict = Literal["Passed", "Failed", "Inconclusive"]


class AnalysisProvider(Protocol):
    """Measures a canary revision; never raises for a measuring problem, reports it as Inconclusive."""

    async def measure(
        self,
        *,
        namespace: str,
        agent: str,
        canary_revision: str,
        stable_revision: str,
        spec: AnalysisSpec,
        now: datetime,
    ) -> list[AnalysisMeasurement]: ...


@dataclass(frozen=True)
class _Sample:
    value: float | None
    why: str = ""  # why there is no value


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _selector(labels: Mapping[str, str], extra: str = "") -> str:
    matchers = [f"{name}={_quote(value)}" for name, value in labels.items()]
    if extra:
        matchers.append(extra)
    return "{" + ",".join(matchers) + "}"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_WHY else text[: _MAX_WHY - 1] + "…"


def request_count_query(labels: Mapping[str, str], window: str) -> str:
    return f"sum(increase({REQUESTS}{_selector(labels)}[{window}]))"


def error_ratio_query(labels: Mapping[str, str], window: str) -> str:
    # A healthy revision has no 5xx series at all, and sum() over nothing is an empty result: `or vector(0)`
    # turns that into 0 errors so a clean canary passes. The denominator stays bare, so no traffic is
    # still an empty result (no data) and zero rate is NaN, both inconclusive.
    errors = f"sum(rate({REQUESTS}{_selector(labels, 'code=~' + _quote('5..'))}[{window}]))"
    return f"({errors} or vector(0)) / sum(rate({REQUESTS}{_selector(labels)}[{window}]))"


def latency_p95_query(labels: Mapping[str, str], window: str) -> str:
    return f"histogram_quantile(0.95, sum by (le) (rate({DURATION_BUCKETS}{_selector(labels)}[{window}])))"


class PrometheusProvider:
    """Canary analysis against the Prometheus HTTP API (instant queries at `now`, window = interval).

    namespace_label: the label a scrape config puts the pod's namespace in (kube-prometheus and the
    ServiceMonitor we ship use `namespace`). The runtime does not export one itself, so it is matched
    only when this agent's series carry it; then two agents of the same name in different namespaces
    are not mixed up. None: never match a namespace.
    client: an httpx.AsyncClient to reuse (tests, connection pooling); default one per measurement.
    """

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        namespace_label: str | None = "namespace",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.timeout = timeout
        self.namespace_label = namespace_label
        self._client = client

    async def measure(
        self,
        *,
        namespace: str,
        agent: str,
        canary_revision: str,
        stable_revision: str,
        spec: AnalysisSpec,
        now: datetime,
    ) -> list[AnalysisMeasurement]:
        if self._client is not None:
            return await self._measure(self._client, namespace, agent, canary_revision, stable_revision, spec, now)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return await self._measure(client, namespace, agent, canary_revision, stable_revision, spec, now)

    async def _measure(
        self,
        client: httpx.AsyncClient,
        namespace: str,
        agent: str,
        canary_revision: str,
        stable_revision: str,
        spec: AnalysisSpec,
        now: datetime,
    ) -> list[AnalysisMeasurement]:
        url = spec.prometheus_url.rstrip("/") + "/api/v1/query"
        stamp = format_time(now)
        try:
            window = promql_duration(parse_duration(spec.interval))
        except ValueError as exc:
            return _all_inconclusive(spec, stamp, f"cannot build the queries: {exc}")

        labels: dict[str, str] = {"agent": agent}
        if self.namespace_label:
            probe = f"count by ({self.namespace_label}) ({REQUESTS}{_selector({'agent': agent})})"
            has_label = await self._has_label(client, url, probe, self.namespace_label, now)
            if isinstance(has_label, str):
                return _all_inconclusive(spec, stamp, has_label, probe)
            if has_label:
                labels[self.namespace_label] = namespace
        canary = {**labels, "revision": canary_revision}
        stable = {**labels, "revision": stable_revision}

        queries = {
            "requests": (request_count_query(canary, window), request_count_query(stable, window)),
            "errorRatio": (error_ratio_query(canary, window), error_ratio_query(stable, window)),
            "latencyP95": (latency_p95_query(canary, window), latency_p95_query(stable, window)),
        }
        keys = [(name, track) for name in queries for track in (0, 1)]
        samples = await asyncio.gather(*(self._query(client, url, queries[name][track], now) for name, track in keys))
        got: dict[tuple[str, int], _Sample] = dict(zip(keys, samples, strict=True))

        count = _request_count(queries["requests"][0], got["requests", 0], got["requests", 1], spec, stamp, window)
        enough = count.verdict == "Passed"
        too_few = count.message
        return [
            count,
            _compare(
                "errorRatio",
                queries["errorRatio"][0],
                got["errorRatio", 0],
                got["errorRatio", 1],
                spec.max_error_ratio,
                enough,
                too_few,
                stamp,
            ),
            _compare(
                "latencyP95",
                queries["latencyP95"][0],
                got["latencyP95", 0],
                got["latencyP95", 1],
                spec.max_latency_p95_seconds,
                enough,
                too_few,
                stamp,
            ),
        ]

    async def _has_label(
        self, client: httpx.AsyncClient, url: str, query: str, label: str, now: datetime
    ) -> bool | str:
        """Whether a series found by `count by (label)` carries the label; a str says why it cannot tell."""
        body = await self._call(client, url, query, now)
        if isinstance(body, str):
            return body
        result = body.get("result")
        if not isinstance(result, list):
            return f"unexpected answer to {query}"
        return any(isinstance(row, dict) and (row.get("metric") or {}).get(label) for row in result)

    async def _query(self, client: httpx.AsyncClient, url: str, query: str, now: datetime) -> _Sample:
        body = await self._call(client, url, query, now)
        if isinstance(body, str):
            return _Sample(None, body)
        kind, result = body.get("resultType"), body.get("result")
        try:
            if kind == "scalar":
                raw = result[1]  # type: ignore[index]
            elif kind == "vector":
                if not result:
                    return _Sample(None, "no data (empty result)")
                if len(result) > 1:
                    return _Sample(None, f"ambiguous: {len(result)} series instead of one")
                raw = result[0]["value"][1]
            else:
                return _Sample(None, f"unexpected result type {kind!r}")
            value = float(raw)
        except (KeyError, IndexError, TypeError, ValueError):
            return _Sample(None, "unreadable result")
        if math.isnan(value):
            return _Sample(None, "value is NaN (no requests in the window?)")
        if math.isinf(value):
            return _Sample(None, f"value is {value}")
        return _Sample(value)

    async def _call(self, client: httpx.AsyncClient, url: str, query: str, now: datetime) -> dict[str, Any] | str:
        """The `data` of a successful answer, or a str saying what went wrong."""
        try:
            response = await client.get(
                url, params={"query": query, "time": f"{now.timestamp():.3f}"}, timeout=self.timeout
            )
        except httpx.TimeoutException:
            return f"Prometheus did not answer within {self.timeout:g}s"
        except httpx.HTTPError as exc:
            return _shorten(f"Prometheus unreachable: {type(exc).__name__}: {exc}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _shorten(f"Prometheus answered HTTP {response.status_code} without a JSON body")
        if response.status_code != 200 or body.get("status") != "success":
            detail = f"{body.get('errorType', '')}: {body.get('error', '')}".strip(": ")
            return _shorten(
                f"query failed (HTTP {response.status_code}, status {body.get('status')!r}): {detail or 'no detail'}"
            )
        data = body.get("data")
        if not isinstance(data, dict):
            return "Prometheus answered without data"
        return data


def _request_count(
    query: str, canary: _Sample, stable: _Sample, spec: AnalysisSpec, stamp: str, window: str
) -> AnalysisMeasurement:
    threshold = str(spec.min_requests)
    if canary.value is None and canary.why != "no data (empty result)":
        verdict: Verdict = "Inconclusive"
        message = f"cannot count canary requests: {canary.why}"
        value = None
    else:
        # No series at all means no request reached the canary in the window: that is a count of 0.
        value = canary.value or 0.0
        if value >= spec.min_requests:
            verdict, message = "Passed", f"{value:.6g} canary requests in {window} (minRequests {threshold})"
        else:
            verdict = "Inconclusive"
            message = f"only {value:.6g} canary requests in {window}, fewer than minRequests {threshold}"
    return AnalysisMeasurement(
        time=stamp,
        metric="requestCount",
        query=query,
        value=_fmt(value),
        stable_value=_fmt(stable.value),
        threshold=threshold,
        verdict=verdict,
        message=_shorten(message),
    )


def _compare(
    metric: str,
    query: str,
    canary: _Sample,
    stable: _Sample,
    threshold: float,
    enough_requests: bool,
    too_few: str,
    stamp: str,
) -> AnalysisMeasurement:
    verdict: Verdict
    if not enough_requests:
        verdict, message = "Inconclusive", f"not judged: {too_few}"
    elif canary.value is None:
        verdict, message = "Inconclusive", f"no canary value: {canary.why}"
    elif canary.value <= threshold:
        verdict, message = "Passed", f"canary {canary.value:.6g} <= {threshold:g}"
    elif stable.value is None:
        # Over the threshold, and nothing shows the whole service is as bad: the canary is to blame.
        verdict = "Failed"
        message = f"canary {canary.value:.6g} > {threshold:g} (no stable value to compare: {stable.why})"
    elif canary.value > stable.value:
        verdict = "Failed"
        message = f"canary {canary.value:.6g} > {threshold:g} and worse than stable {stable.value:.6g}"
    else:
        verdict = "Inconclusive"
        message = (
            f"canary {canary.value:.6g} > {threshold:g} but stable is as bad ({stable.value:.6g}): "
            "not the canary's doing"
        )
    return AnalysisMeasurement(
        time=stamp,
        metric=metric,
        query=query,
        value=_fmt(canary.value),
        stable_value=_fmt(stable.value),
        threshold=f"{threshold:g}",
        verdict=verdict,
        message=_shorten(message),
    )


def _all_inconclusive(spec: AnalysisSpec, stamp: str, why: str, query: str = "") -> list[AnalysisMeasurement]:
    thresholds = {
        "requestCount": str(spec.min_requests),
        "errorRatio": f"{spec.max_error_ratio:g}",
        "latencyP95": f"{spec.max_latency_p95_seconds:g}",
    }
    return [
        AnalysisMeasurement(
            time=stamp,
            metric=metric,
            query=query,
            threshold=threshold,
            verdict="Inconclusive",
            message=_shorten(why),
        )
        for metric, threshold in thresholds.items()
    ]
