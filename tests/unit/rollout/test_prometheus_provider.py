"""PrometheusProvider's judgement on answers a real Prometheus gives rarely or only when broken
(NaN, Inf, errors, timeouts, odd shapes), served through httpx's in-process transport.
The real-server path is tests/integration/test_prometheus_analysis.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from agentfleet_operator.api.agent import AnalysisMeasurement, AnalysisSpec
from agentfleet_operator.rollout.analysis import (
    PrometheusProvider,
    error_ratio_query,
    latency_p95_query,
    request_count_query,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
URL = "http://prom.test:9090"
SPEC = AnalysisSpec.model_validate(
    {
        "prometheusURL": URL,
        "interval": "30s",
        "maxErrorRatio": 0.05,
        "maxLatencyP95Seconds": 2.0,
        "minRequests": 20,
    }
)

Values = dict[tuple[str, str], Any]  # (metric, revision) -> value (float, "NaN", None for empty)


def _kind(query: str) -> str:
    if query.startswith("count by"):
        return "probe"
    if "histogram_quantile" in query:
        return "latencyP95"
    if 'code=~"5.."' in query:
        return "errorRatio"
    return "requests"


def _vector(value: Any) -> dict[str, Any]:
    result = [] if value is None else [{"metric": {}, "value": [NOW.timestamp(), str(value)]}]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def fake_prometheus(
    values: Values, probe_labels: list[dict[str, str]] | None = None, seen: list[str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query"
        assert float(request.url.params["time"]) == pytest.approx(NOW.timestamp())
        query = request.url.params["query"]
        if seen is not None:
            seen.append(query)
        kind = _kind(query)
        if kind == "probe":
            rows = [{"metric": labels, "value": [NOW.timestamp(), "1"]} for labels in probe_labels or [{}]]
            return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": rows}})
        revision = "canary" if 'revision="canary"' in query else "stable"
        return httpx.Response(200, json=_vector(values.get((kind, revision))))

    return handle


def healthy(**overrides: Any) -> Values:
    values: Values = {
        ("requests", "canary"): 120.0,
        ("requests", "stable"): 900.0,
        ("errorRatio", "canary"): 0.01,
        ("errorRatio", "stable"): 0.01,
        ("latencyP95", "canary"): 0.4,
        ("latencyP95", "stable"): 0.5,
    }
    for key, value in overrides.items():
        metric, revision = key.split("__")
        values[metric, revision] = value
    return values


async def measure(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> dict[str, AnalysisMeasurement]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = PrometheusProvider(client=client, **kwargs)
        ms = await provider.measure(
            namespace="support",
            agent="bot",
            canary_revision="canary",
            stable_revision="stable",
            spec=SPEC,
            now=NOW,
        )
    assert [m.metric for m in ms] == ["requestCount", "errorRatio", "latencyP95"]
    assert all(m.time == "2025-01-01T12:00:00Z" for m in ms)
    return {m.metric: m for m in ms}


def verdicts(ms: dict[str, AnalysisMeasurement]) -> list[str]:
    return [m.verdict for m in ms.values()]


async def test_healthy_canary_passes_with_queries_and_values_recorded() -> None:
    ms = await measure(fake_prometheus(healthy()))
    assert verdicts(ms) == ["Passed"] * 3
    ratio = ms["errorRatio"]
    assert (ratio.value, ratio.stable_value, ratio.threshold) == ("0.01", "0.01", "0.05")
    assert ratio.query == error_ratio_query({"agent": "bot", "revision": "canary"}, "30s")
    assert ms["latencyP95"].query == latency_p95_query({"agent": "bot", "revision": "canary"}, "30s")
    assert ms["requestCount"].query == request_count_query({"agent": "bot", "revision": "canary"}, "30s")
    assert (ms["requestCount"].value, ms["requestCount"].threshold) == ("120", "20")


def test_query_text() -> None:
    labels = {"agent": "bot", "revision": "abc"}
    assert error_ratio_query(labels, "30s") == (
        '(sum(rate(agent_requests_total{agent="bot",revision="abc",code=~"5.."}[30s])) or vector(0)) '
        '/ sum(rate(agent_requests_total{agent="bot",revision="abc"}[30s]))'
    )
    assert request_count_query(labels, "1m") == 'sum(increase(agent_requests_total{agent="bot",revision="abc"}[1m]))'
    assert latency_p95_query(labels, "30s") == (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(agent_request_duration_seconds_bucket{agent="bot",revision="abc"}[30s])))'
    )
    assert request_count_query({"agent": 'a"b\\'}, "1s") == r'sum(increase(agent_requests_total{agent="a\"b\\"}[1s]))'


async def test_canary_worse_than_stable_and_over_threshold_fails() -> None:
    ms = await measure(fake_prometheus(healthy(errorRatio__canary=0.5)))
    assert ms["errorRatio"].verdict == "Failed"
    assert ms["errorRatio"].value == "0.5" and "worse than stable 0.01" in ms["errorRatio"].message
    assert ms["latencyP95"].verdict == "Passed"


async def test_over_threshold_but_stable_as_bad_is_inconclusive() -> None:
    ms = await measure(fake_prometheus(healthy(latencyP95__canary=3.0, latencyP95__stable=3.5)))
    assert ms["latencyP95"].verdict == "Inconclusive"
    assert "stable is as bad" in ms["latencyP95"].message


async def test_over_threshold_without_a_stable_value_fails() -> None:
    ms = await measure(fake_prometheus(healthy(errorRatio__canary=0.2, errorRatio__stable=None)))
    assert ms["errorRatio"].verdict == "Failed" and ms["errorRatio"].stable_value == ""


async def test_too_few_requests_is_inconclusive_even_when_values_look_fine() -> None:
    ms = await measure(fake_prometheus(healthy(requests__canary=7.0)))
    assert verdicts(ms) == ["Inconclusive"] * 3
    assert "only 7 canary requests in 30s, fewer than minRequests 20" in ms["requestCount"].message
    assert ms["errorRatio"].value == "0.01", "the value is still shown"


async def test_too_few_requests_never_fail_either() -> None:
    ms = await measure(fake_prometheus(healthy(requests__canary=3.0, errorRatio__canary=1.0)))
    assert verdicts(ms) == ["Inconclusive"] * 3


async def test_no_canary_series_at_all_is_zero_requests() -> None:
    ms = await measure(fake_prometheus(healthy(requests__canary=None, errorRatio__canary=None)))
    assert verdicts(ms) == ["Inconclusive"] * 3
    assert ms["requestCount"].value == "0"


@pytest.mark.parametrize("bad", ["NaN", "+Inf", "-Inf", None])
async def test_nan_inf_or_empty_values_are_inconclusive(bad: Any) -> None:
    ms = await measure(fake_prometheus(healthy(latencyP95__canary=bad)))
    assert ms["latencyP95"].verdict == "Inconclusive"
    assert ms["latencyP95"].value == ""
    assert any(word in ms["latencyP95"].message for word in ("NaN", "inf", "no data"))


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (httpx.Response(503, text="Service Unavailable"), "HTTP 503 without a JSON body"),
        (httpx.Response(200, text="<html>proxy login</html>"), "HTTP 200 without a JSON body"),
        (
            httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}),
            "bad_data: parse error",
        ),
        (httpx.Response(200, json={"status": "error", "error": "boom"}), "status 'error'"),
        (httpx.Response(200, json={"status": "success"}), "without data"),
        (
            httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": []}}),
            "unexpected",
        ),
    ],
)
async def test_broken_answers_are_inconclusive(response: httpx.Response, words: str) -> None:
    ms = await measure(lambda request: response, namespace_label=None)
    assert verdicts(ms) == ["Inconclusive"] * 3
    assert words in ms["errorRatio"].message or words in ms["requestCount"].message


async def test_two_series_where_one_was_expected_is_inconclusive() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        rows = [{"metric": {"x": str(i)}, "value": [0, "1"]} for i in range(2)]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": rows}})

    ms = await measure(handle, namespace_label=None)
    assert "ambiguous" in ms["latencyP95"].message and verdicts(ms) == ["Inconclusive"] * 3


async def test_scalar_results_are_read() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        value = {"requests": "100", "errorRatio": "0", "latencyP95": "0.1"}[_kind(request.url.params["query"])]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "scalar", "result": [0, value]}})

    assert verdicts(await measure(handle, namespace_label=None)) == ["Passed"] * 3


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (httpx.ReadTimeout("slow"), "did not answer within 10s"),
        (httpx.ConnectError("refused"), "unreachable"),
    ],
)
async def test_timeouts_and_unreachable_prometheus_are_inconclusive(error: Exception, words: str) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    ms = await measure(handle)
    assert verdicts(ms) == ["Inconclusive"] * 3
    assert all(words in m.message for m in ms.values())
    assert ms["errorRatio"].query.startswith("count by (namespace)"), "the query that failed is shown"


async def test_namespace_is_matched_when_the_series_carry_it() -> None:
    seen: list[str] = []
    handler = fake_prometheus(healthy(), probe_labels=[{"namespace": "support"}, {"namespace": "other"}], seen=seen)
    ms = await measure(handler)
    assert verdicts(ms) == ["Passed"] * 3
    assert seen[0] == 'count by (namespace) (agent_requests_total{agent="bot"})'
    assert all('namespace="support"' in q for q in seen[1:])
    assert 'namespace="support"' in ms["errorRatio"].query


async def test_namespace_is_not_assumed() -> None:
    seen: list[str] = []
    await measure(fake_prometheus(healthy(), probe_labels=[{}], seen=seen))
    assert not any("namespace=" in q for q in seen)
    seen.clear()
    await measure(fake_prometheus(healthy(), seen=seen), namespace_label=None)
    assert not any("namespace" in q for q in seen)
