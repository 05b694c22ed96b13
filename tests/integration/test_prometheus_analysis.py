"""Canary analysis against a real Prometheus (the Debian package) scraping a small exporter in this test
that counts requests under the runtime's metric names for a stable and several canary revisions.

Needs no cluster. Without a prometheus binary the tests are skipped, except under CI=true, where that
is a failure: CI must not go green by skipping the real thing.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from agentfleet_operator.api.agent import AnalysisMeasurement, AnalysisSpec
from agentfleet_operator.rollout.analysis import PrometheusProvider
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from tests.integration.canary_support import prometheus_binary

AGENT = "support-bot"
STABLE = "stable-1"
GOOD = "canary-good"  # all 200, fast
BAD = "canary-bad"  # half of the answers are 500
FEW = "canary-few"  # a trickle: fewer requests per window than minRequests
WINDOW = "10s"
# Generous bounds for slow machines; these are limits to give up, not timings under test.
READY_WITHIN = 120.0
DATA_WITHIN = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Traffic:
    """An agent runtime's /metrics, fed by a thread that 'answers requests' for each revision."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agent_requests",
            "API requests answered, by HTTP status code.",
            ["agent", "revision", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "agent_request_duration_seconds",
            "Time to answer an API request.",
            ["agent", "revision"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-traffic", daemon=True)
        self.server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.port = int(self.server.server_port)

    def answer(self, revision: str, code: int, seconds: float) -> None:
        self.requests.labels(AGENT, revision, str(code)).inc()
        self.duration.labels(AGENT, revision).observe(seconds)

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(0.05):  # 20 ticks a second
            tick += 1
            for _ in range(5):
                self.answer(STABLE, 200, 0.04)
            self.answer(GOOD, 200, 0.03)
            self.answer(BAD, 200, 0.03)
            self.answer(BAD, 500, 0.03)
            if tick % 40 == 0:  # one request every two seconds: about 5 per 10s window
                self.answer(FEW, 200, 0.03)

    def start(self) -> None:
        for revision in (GOOD, BAD, FEW):  # make every series exist from the first scrape on
            self.answer(revision, 200, 0.03)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def scalar(self, query: str) -> float | None:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5).json()
        result = answer.get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None

    def wait_for_data(self) -> None:
        """Until every revision's counter has a window's worth of scrapes, so rate() has data to work on."""
        deadline = time.monotonic() + DATA_WITHIN
        queries = [
            f'min(count_over_time(agent_requests_total{{agent="{AGENT}",revision="{revision}"}}[{WINDOW}]))'
            for revision in (STABLE, GOOD, BAD, FEW)
        ]
        while time.monotonic() < deadline:
            counts = [self.scalar(query) for query in queries]
            if all(count is not None and count >= 8 for count in counts):
                return
            time.sleep(0.5)
        pytest.fail(f"Prometheus never had {WINDOW} of samples; its log:\n{self.log_tail()}", pytrace=False)


@pytest.fixture(scope="module")
def traffic() -> Iterator[Traffic]:
    source = Traffic()
    source.start()
    yield source
    source.stop()


StartPrometheus = Callable[..., Prometheus]


@pytest.fixture(scope="module")
def start_prometheus(traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartPrometheus]:
    """start_prometheus(target_labels={}) -> a real Prometheus scraping the exporter every second."""
    binary = prometheus_binary()
    started: list[Prometheus] = []

    def start(target_labels: dict[str, str] | None = None) -> Prometheus:
        home = tmp_path_factory.mktemp("prometheus")
        labels = "".join(f"\n          {key}: {value}" for key, value in (target_labels or {}).items())
        config = home / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: agent\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{traffic.port}']" + (f"\n        labels:{labels}" if labels else "") + "\n"
        )
        port = _free_port()
        log = home / "prometheus.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=home,
            )
        server = Prometheus(f"http://127.0.0.1:{port}", process, log)
        started.append(server)
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}:\n{server.log_tail()}", pytrace=False)
            try:
                if httpx.get(f"{server.url}/-/ready", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"prometheus was not ready within {READY_WITHIN:g}s:\n{server.log_tail()}", pytrace=False)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def prometheus(start_prometheus: StartPrometheus) -> Prometheus:
    server = start_prometheus()
    server.wait_for_data()
    return server


def analysis_spec(url: str, **overrides: object) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {
            "prometheusURL": url,
            "interval": WINDOW,
            "maxErrorRatio": 0.05,
            "maxLatencyP95Seconds": 2.0,
            "minRequests": 20,
            **overrides,
        }
    )


async def measure(
    url: str, canary: str, namespace: str = "support", **overrides: object
) -> dict[str, AnalysisMeasurement]:
    provider = PrometheusProvider(timeout=5)
    ms = await provider.measure(
        namespace=namespace,
        agent=AGENT,
        canary_revision=canary,
        stable_revision=STABLE,
        spec=analysis_spec(url, **overrides),
        now=datetime.now(UTC),
    )
    assert [m.metric for m in ms] == ["requestCount", "errorRatio", "latencyP95"]
    return {m.metric: m for m in ms}


async def test_healthy_canary_passes(prometheus: Prometheus) -> None:
    ms = await measure(prometheus.url, GOOD)
    assert [m.verdict for m in ms.values()] == ["Passed"] * 3, [m.message for m in ms.values()]
    # No 5xx series exists for this revision at all: the ratio is a real 0, not "no data".
    assert float(ms["errorRatio"].value) == 0
    assert float(ms["requestCount"].value) >= 20
    assert float(ms["latencyP95"].value) <= 0.05
    assert ms["errorRatio"].stable_value != "" and ms["latencyP95"].stable_value != ""
    assert f'revision="{GOOD}"' in ms["errorRatio"].query
    # The recorded query is exactly what Prometheus answers to.
    assert prometheus.scalar(ms["errorRatio"].query) is not None


async def test_canary_with_half_5xx_fails_with_the_value_in_status(prometheus: Prometheus) -> None:
    ms = await measure(prometheus.url, BAD)
    ratio = ms["errorRatio"]
    assert ratio.verdict == "Failed", ratio.message
    assert 0.3 < float(ratio.value) < 0.7
    assert float(ratio.stable_value) == 0
    assert ratio.threshold == "0.05" and "worse than stable" in ratio.message
    assert ms["requestCount"].verdict == "Passed"


async def test_too_few_requests_is_inconclusive(prometheus: Prometheus) -> None:
    ms = await measure(prometheus.url, FEW)
    assert [m.verdict for m in ms.values()] == ["Inconclusive"] * 3
    assert "fewer than minRequests 20" in ms["requestCount"].message
    assert float(ms["requestCount"].value) < 20


async def test_revision_without_any_series_is_inconclusive(prometheus: Prometheus) -> None:
    ms = await measure(prometheus.url, "never-deployed")
    assert [m.verdict for m in ms.values()] == ["Inconclusive"] * 3
    assert ms["requestCount"].value == "0"


async def test_namespace_label_is_matched_when_the_scrape_adds_it(start_prometheus: StartPrometheus) -> None:
    server = start_prometheus({"namespace": "support"})
    server.wait_for_data()
    ms = await measure(server.url, GOOD, namespace="support")
    assert [m.verdict for m in ms.values()] == ["Passed"] * 3, [m.message for m in ms.values()]
    assert 'namespace="support"' in ms["errorRatio"].query
    # The same agent name in another namespace is another agent: no data, not someone else's pass.
    elsewhere = await measure(server.url, GOOD, namespace="elsewhere")
    assert [m.verdict for m in elsewhere.values()] == ["Inconclusive"] * 3


async def test_stopped_prometheus_is_inconclusive_never_passed(start_prometheus: StartPrometheus) -> None:
    server = start_prometheus()
    server.wait_for_data()
    before = await measure(server.url, GOOD)
    assert [m.verdict for m in before.values()] == ["Passed"] * 3
    server.stop()
    after = await measure(server.url, GOOD)
    assert [m.verdict for m in after.values()] == ["Inconclusive"] * 3
    assert all("unreachable" in m.message or "did not answer" in m.message for m in after.values())


async def test_unreachable_url_is_inconclusive() -> None:
    ms = await measure(f"http://127.0.0.1:{_free_port()}", GOOD)
    assert [m.verdict for m in ms.values()] == ["Inconclusive"] * 3
