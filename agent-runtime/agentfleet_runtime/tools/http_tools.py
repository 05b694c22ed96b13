"""Connector tools over HTTP: argument validation, auth, rate limit, retries and a circuit breaker.

A tool failure is an answer, not an exception: the model (or the rules reasoner) gets a short
error text and can tell the caller that a system is unavailable, instead of the request failing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import jsonschema
from jsonschema.exceptions import SchemaError

from ..config import ConnectorConfig, ToolConfig
from ..metrics import RuntimeMetrics
from ..retry_delay import TOOL_RETRIES, retry_delay
from .auth import ConnectorCredentials, CredentialsError, build_credentials
from .breaker import CircuitBreaker
from .ratelimit import TokenBucket

if TYPE_CHECKING:
    from .agent_tools import AgentConnectorClient

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 16_000
# Statuses that mean "the request was not processed, try again" for any method; the others
# are retried only for methods that are safe to repeat.
_RETRY_ANY = {429, 503}
_RETRY_IDEMPOTENT = {500, 502, 504}
_IDEMPOTENT = {"GET", "PUT", "DELETE"}


class ToolError(Exception):
    """A tool call that did not produce a result; `outcome` is the metrics label."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


@dataclass
class ToolResult:
    ok: bool
    content: str
    outcome: str
    data: Any = None


@dataclass
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "outcome": self.outcome}


class ConnectorClient:
    """Everything one Connector shares across its tools: credentials, breaker, bucket."""

    def __init__(self, config: ConnectorConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http
        self.credentials: ConnectorCredentials = build_credentials(
            config.auth, config.name, timeout=config.timeout_seconds
        )
        self.breaker = CircuitBreaker()
        self.bucket = TokenBucket(config.rate_limit.requests_per_second) if config.rate_limit is not None else None

    def _url(self, tool: ToolConfig, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        path, rest = tool.path, dict(args)
        # Path templates like /customers/{id} take their values out of the arguments.
        for name in list(rest):
            placeholder = "{" + name + "}"
            if placeholder in path:
                path = path.replace(placeholder, quote(str(rest.pop(name)), safe=""))
        base = self.config.endpoint.rstrip("/")
        return (f"{base}/{path.lstrip('/')}" if path else base), rest

    @staticmethod
    def _query(args: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for key, value in args.items():
            if isinstance(value, bool):
                params[key] = "true" if value else "false"
            elif isinstance(value, dict):
                params[key] = json.dumps(value, separators=(",", ":"))
            elif value is not None:
                params[key] = value
        return params

    async def call(self, tool: ToolConfig, args: dict[str, Any]) -> Any:
        name = self.config.name
        if self.config.type == "mcp":
            raise ToolError("unsupported", f"connector {name}: mcp tools are not supported yet")
        method = "POST" if self.config.type == "webhook" else tool.method
        if not self.breaker.allow():
            wait = round(self.breaker.retry_after())
            raise ToolError("circuit_open", f"{name} is unavailable right now (circuit open, retry in {wait}s)")
        timeout = self.config.timeout_seconds
        if self.bucket is not None and not await self.bucket.acquire(max_wait=timeout):
            raise ToolError("rate_limited", f"{name} is rate limited; try again shortly")
        url, rest = self._url(tool, args)
        params = self._query(rest) if method == "GET" else None
        body = rest if method != "GET" else None
        attempts, refreshed = self.config.retries + 1, False
        attempt = 0
        while True:
            attempt += 1
            try:
                headers = await self.credentials.headers(self.http)
            except CredentialsError as exc:
                raise ToolError("auth_error", str(exc)) from None
            try:
                response = await self.http.request(
                    method, url, params=params, json=body, headers=headers, timeout=timeout
                )
            except httpx.HTTPError as exc:
                self.breaker.record_failure()
                # A read timeout may have reached the server: repeat only what is safe to repeat.
                retryable = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) or method in _IDEMPOTENT
                outcome = "timeout" if isinstance(exc, httpx.TimeoutException) else "unreachable"
                if attempt < attempts and retryable and self.breaker.allow():
                    await asyncio.sleep(retry_delay(attempt, None, TOOL_RETRIES))
                    continue
                raise ToolError(outcome, f"{name} did not answer ({type(exc).__name__})") from None
            status = response.status_code
            if status == 401 and self.credentials.refreshable and not refreshed:
                refreshed = True  # a revoked or expired token: fetch a new one, once
                self.credentials.invalidate()
                attempt -= 1
                continue
            if status in _RETRY_ANY or (status in _RETRY_IDEMPOTENT and method in _IDEMPOTENT):
                self.breaker.record_failure()
                if attempt < attempts and self.breaker.allow():
                    await asyncio.sleep(retry_delay(attempt, response.headers.get("retry-after"), TOOL_RETRIES))
                    continue
                raise ToolError("http_error", f"{name} answered HTTP {status}")
            if status >= 500:
                self.breaker.record_failure()
                raise ToolError("http_error", f"{name} answered HTTP {status}")
            # Any 4xx means the system is up; it is the request that was wrong.
            self.breaker.record_success()
            if status >= 400:
                raise ToolError("http_error", f"{name} answered HTTP {status}: {_snippet(response.text)}")
            return _parse(response)


def _snippet(text: str, limit: int = 300) -> str:
    return text[:limit] + ("..." if len(text) > limit else "")


def _parse(response: httpx.Response) -> Any:
    if not response.content:
        return {"status": response.status_code}
    try:
        return response.json()
    except ValueError:
        return response.text


@dataclass
class Tool:
    name: str
    connector: ConnectorClient | AgentConnectorClient
    spec: ToolConfig
    validator: Any = field(repr=False)

    def definition(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.spec.description,
                "parameters": self.spec.parameters,
            },
        }


class ToolBox:
    """The tools of all connectors under the names the model sees.

    A tool name defined by two connectors is exposed as `<connector>__<tool>` for both.
    """

    def __init__(
        self, connectors: list[ConnectorConfig], http: httpx.AsyncClient, metrics: RuntimeMetrics | None = None
    ) -> None:
        self.metrics = metrics
        from .agent_tools import AgentConnectorClient  # here: it imports ToolError from this module

        self.connectors = {
            c.name: AgentConnectorClient(c, http) if c.type == "agent" else ConnectorClient(c, http) for c in connectors
        }
        counts = Counter(tool.name for c in connectors for tool in c.tools)
        self.tools: dict[str, Tool] = {}
        for connector in connectors:
            for spec in connector.tools:
                name = spec.name
                if counts[name] > 1:
                    name = f"{connector.name.replace('.', '_')}__{spec.name}"
                self.tools[name] = Tool(name, self.connectors[connector.name], spec, _validator(spec))

    def __bool__(self) -> bool:
        return bool(self.tools)

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self.tools.values()]

    async def call(self, name: str, arguments: str | dict[str, Any] | None) -> ToolResult:
        started = time.perf_counter()
        result = await self._call(name, arguments)
        if self.metrics is not None:
            self.metrics.tool_call(
                name if name in self.tools else "unknown", result.outcome, time.perf_counter() - started
            )
        if not result.ok:
            log.info("tool call failed", extra={"tool": name, "outcome": result.outcome})
        return result

    async def _call(self, name: str, arguments: str | dict[str, Any] | None) -> ToolResult:
        tool = self.tools.get(name)
        if tool is None:
            return _failure("unknown_tool", f"there is no tool named {name!r}")
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else (arguments or {})
        except ValueError:
            return _failure("invalid_arguments", "tool arguments are not valid JSON")
        if not isinstance(args, dict):
            return _failure("invalid_arguments", "tool arguments must be a JSON object")
        errors = sorted(tool.validator.iter_errors(args), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "(arguments)"
            return _failure("invalid_arguments", f"invalid arguments for {name}: {where}: {errors[0].message}")
        try:
            data = await tool.connector.call(tool.spec, args)
        except ToolError as exc:
            return _failure(exc.outcome, exc.message)
        content = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        return ToolResult(True, content[:MAX_RESULT_CHARS], "success", data)


def _failure(outcome: str, message: str) -> ToolResult:
    return ToolResult(False, json.dumps({"error": message}), outcome, {"error": message})


def _validator(spec: ToolConfig) -> Any:
    cls = jsonschema.validators.validator_for(spec.parameters, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(spec.parameters)
    except SchemaError as exc:
        raise ValueError(f"tool {spec.name}: parameters is not a valid JSON Schema: {exc.message}") from None
    return cls(spec.parameters)
