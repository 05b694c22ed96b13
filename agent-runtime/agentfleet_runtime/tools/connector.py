"""What every Connector client shares, whatever protocol it speaks: credentials, a circuit
breaker (the Connector's `circuitBreaker` thresholds, or breaker.py's defaults), a token bucket,
and the one way a call fails (ToolError with a metrics outcome).

The clients (http_tools.HttpConnectorClient, mcp_tools.McpConnectorClient) differ only in how a
call reaches the system; admitting a call and counting its failures is done here once.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..config import ConnectorConfig, ToolConfig
from .auth import ConnectorCredentials, build_credentials
from .breaker import CircuitBreaker
from .ratelimit import TokenBucket


class ToolError(Exception):
    """A tool call that did not produce a result; `outcome` is the metrics label.

    `reason` is the runtime's own words: it names the connector and what went wrong, never a
    credential or an argument value, and is logged. `detail` is what the system itself answered
    (an error body, an MCP server's explanation): the model reads it to tell the caller why, but
    it may echo the arguments, so it is not logged. `message`, what the model sees, is both."""

    def __init__(self, outcome: str, reason: str, *, detail: str | None = None) -> None:
        message = f"{reason}: {detail}" if detail is not None else reason
        super().__init__(message)
        self.outcome = outcome
        self.reason = reason
        self.detail = detail
        self.message = message


class ConnectorClient:
    """Everything one Connector shares across its tools: credentials, breaker, bucket."""

    def __init__(self, config: ConnectorConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        # The runtime's shared client: HTTP tools call through it, every type fetches OAuth tokens with it.
        self.http = http
        self.credentials: ConnectorCredentials = build_credentials(
            config.auth, config.name, timeout=config.timeout_seconds
        )
        breaker = config.circuit_breaker
        self.breaker = (
            CircuitBreaker(failure_threshold=breaker.failures, reset_timeout=breaker.open_seconds)
            if breaker is not None
            else CircuitBreaker()
        )
        self.bucket = TokenBucket(config.rate_limit.requests_per_second) if config.rate_limit is not None else None

    async def admit(self) -> None:
        """Let a call go out, or fail it at once: the circuit is open or the rate limit would make it wait
        longer than the connector's timeout."""
        name = self.config.name
        if not self.breaker.allow():
            wait = round(self.breaker.retry_after())
            raise ToolError("circuit_open", f"{name} is unavailable right now (circuit open, retry in {wait}s)")
        if self.bucket is not None and not await self.bucket.acquire(max_wait=self.config.timeout_seconds):
            raise ToolError("rate_limited", f"{name} is rate limited; try again shortly")

    async def call(self, tool: ToolConfig, args: dict[str, Any]) -> Any:
        """The tool's result as JSON-able data, or ToolError."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the client holds open (connections, sessions); the runtime is stopping."""
        return None
