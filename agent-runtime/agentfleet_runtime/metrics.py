"""Prometheus metrics under the names the operator's canary analysis and dashboards query.

Each app gets its own registry so several runtimes can live in one process (tests) and
/metrics shows exactly this runtime's series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# OpenTelemetry's recommended boundaries for gen_ai.client.token.usage.
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class RuntimeMetrics:
    def __init__(self, agent: str, revision: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.agent, self.revision = agent, revision
        self.requests = Counter(
            "agent_requests",
            "API requests answered, by HTTP status code.",
            ["agent", "revision", "code"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "agent_request_duration_seconds",
            "Time to answer an API request, streaming included.",
            ["agent", "revision"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(agent, revision)
        self.inflight = Gauge(
            "agent_inflight_requests",
            "API requests being answered now.",
            ["agent", "revision"],
            registry=self.registry,
        ).labels(agent, revision)
        token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per model operation.",
            ["gen_ai_token_type"],
            buckets=_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.input_tokens = token_usage.labels("input")
        self.output_tokens = token_usage.labels("output")
        self.operation_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of one model operation.",
            buckets=_GENAI_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.tool_calls = Counter(
            "agent_tool_calls", "Tool calls, by outcome.", ["tool", "outcome"], registry=self.registry
        )
        self.tool_call_duration = Histogram(
            "agent_tool_call_duration_seconds",
            "Duration of one tool call, retries included.",
            ["tool"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tls_reloads = Counter(
            "agent_tls_certificate_reloads",
            "Reloads of the served TLS certificate after its files changed, by result (success, error: the "
            "previous certificate stays in use).",
            ["result"],
            registry=self.registry,
        )
        self.tls_expiry = Gauge(
            "agent_tls_certificate_expiry_timestamp_seconds",
            "When the TLS certificate being served expires (Unix time).",
            registry=self.registry,
        )
        self.answer_cache_requests = Counter(
            "agent_cache_requests",
            "Requests to an Agent with spec.cache, by what the answer cache did: hit (answered from it), "
            "miss (the model answered) or bypass (not cacheable: temperature above 0, or personal data).",
            ["agent", "revision", "result"],
            registry=self.registry,
        )
        self._answer_cache: dict[str, object] = {}
        self.tool_cache = Counter(
            "agent_tool_cache_requests",
            "Calls of tools with cacheSeconds, by result: hit (the cached result, the system not called) or miss.",
            ["tool", "result"],
            registry=self.registry,
        )
        self._by_code: dict[int, object] = {}

    def request_done(self, code: int, seconds: float) -> None:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = self.requests.labels(self.agent, self.revision, str(code))
        child.inc()  # type: ignore[attr-defined]
        self.request_duration.observe(seconds)

    def model_operation(self, seconds: float, input_tokens: int, output_tokens: int) -> None:
        self.operation_duration.observe(seconds)
        self.input_tokens.observe(input_tokens)
        self.output_tokens.observe(output_tokens)

    def tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        self.tool_calls.labels(tool, outcome).inc()
        self.tool_call_duration.labels(tool).observe(seconds)

    def tls_certificate(self, result: str | None, expires: float | None) -> None:
        """A reload's result (None: the certificate served at start), and the expiry of what is served."""
        if result is not None:
            self.tls_reloads.labels(result).inc()
        if expires is not None:
            self.tls_expiry.set(expires)

    def answer_cache(self, result: str) -> None:
        child = self._answer_cache.get(result)
        if child is None:
            child = self._answer_cache[result] = self.answer_cache_requests.labels(self.agent, self.revision, result)
        child.inc()  # type: ignore[attr-defined]

    def tool_cache_lookup(self, tool: str, hit: bool) -> None:
        self.tool_cache.labels(tool, "hit" if hit else "miss").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
