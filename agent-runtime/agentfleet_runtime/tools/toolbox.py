"""The tools of all connectors under the names the model sees, and what a call returns.

Validation of the arguments, the metrics of every call and the shape of its result (a tool
message the model can read, success or not) are the same for every connector type; only the
client that reaches the system is chosen by type (`build_client`). A tool with `cacheSeconds`
(http GET only) answers a call with arguments it saw succeed within that time from tool_cache.py,
without reaching the system; such a call counts in agent_tool_cache_requests_total, not in
agent_tool_calls_total (which counts calls that were made).
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
from jsonschema.exceptions import SchemaError

from ..config import ConnectorConfig, ToolConfig
from ..metrics import RuntimeMetrics
from ..tls import OutboundClients
from .agent_tools import AgentConnectorClient
from .connector import ConnectorClient, ToolError
from .http_tools import HttpConnectorClient
from .tool_cache import MISSING, ToolResultCache, tool_cache_key

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 16_000


@dataclass
class ToolResult:
    """`content` is what the model reads; `reason` says why a failed call failed in the runtime's own
    words (no argument value, no credential, nothing the system echoed), for the logs."""

    ok: bool
    content: str
    outcome: str
    data: Any = None
    reason: str = ""
    cached: bool = False  # answered from the tool's cache (cacheSeconds), the system not called


@dataclass
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "outcome": self.outcome}


def build_client(
    config: ConnectorConfig, http: httpx.AsyncClient, verify: ssl.SSLContext | None = None
) -> ConnectorClient:
    """The client for one connector, by its type. `http` already trusts the connector's CA bundle;
    `verify` is that trust for the MCP SDK's own HTTP client (None: the public CAs)."""
    if config.type == "mcp":
        # Imported only when an mcp connector is configured: the MCP SDK is a large import
        # that most agents never need.
        from .mcp_tools import McpConnectorClient

        return McpConnectorClient(config, http, verify=verify)
    if config.type == "agent":
        return AgentConnectorClient(config, http)
    return HttpConnectorClient(config, http)


@dataclass
class Tool:
    name: str
    connector: ConnectorClient
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
        self,
        connectors: list[ConnectorConfig],
        http: httpx.AsyncClient | OutboundClients,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        """http: the runtime's clients by trust, or one client for every connector (tests)."""
        self.metrics = metrics
        self.cache = ToolResultCache()
        clients = http if isinstance(http, OutboundClients) else OutboundClients(http)
        self.connectors = {
            c.name: build_client(c, clients.client(c.ca_file), clients.context(c.ca_file) if c.ca_file else None)
            for c in connectors
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
        if self.metrics is not None and not result.cached:
            self.metrics.tool_call(
                name if name in self.tools else "unknown", result.outcome, time.perf_counter() - started
            )
        if not result.ok:
            # The tool as the metrics label it: a name the model made up is its text, not an id.
            tool = self.tools.get(name)
            extra = {"tool": name if tool else "unknown", "outcome": result.outcome, "reason": result.reason}
            if tool is not None:
                extra["connector"] = tool.connector.config.name
            log.info("tool call failed", extra=extra)
        return result

    async def _call(self, name: str, arguments: str | dict[str, Any] | None) -> ToolResult:
        tool = self.tools.get(name)
        if tool is None:
            return _failure("unknown_tool", f"there is no tool named {name!r}", "the model asked for an unknown tool")
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else (arguments or {})
        except ValueError:
            return _failure("invalid_arguments", "tool arguments are not valid JSON")
        if not isinstance(args, dict):
            return _failure("invalid_arguments", "tool arguments must be a JSON object")
        errors = sorted(tool.validator.iter_errors(args), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "(arguments)"
            # jsonschema's message quotes the value; the log names the rule it broke instead.
            return _failure(
                "invalid_arguments",
                f"invalid arguments for {name}: {where}: {errors[0].message}",
                f"invalid arguments for {name}: {where} fails {errors[0].validator}",
            )
        seconds = tool.spec.cache_seconds
        key = tool_cache_key(tool.connector.config.name, tool.spec.name, args) if seconds else None
        if key is not None:
            data = self.cache.get(key)
            if self.metrics is not None:
                self.metrics.tool_cache_lookup(name, data is not MISSING)
            if data is not MISSING:
                return _success(data, cached=True)
        try:
            data = await tool.connector.call(tool.spec, args)
        except ToolError as exc:
            return _failure(exc.outcome, exc.message, exc.reason)
        if key is not None and seconds:
            self.cache.put(key, data, seconds)
        return _success(data)

    async def aclose(self) -> None:
        """Close every connector's connections and sessions (the runtime is stopping)."""
        for connector in self.connectors.values():
            try:
                await connector.aclose()
            except Exception:  # one connector's failing close must not leave the others open
                log.warning("closing a connector failed", extra={"connector": connector.config.name}, exc_info=True)


def _success(data: Any, *, cached: bool = False) -> ToolResult:
    content = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return ToolResult(True, content[:MAX_RESULT_CHARS], "success", data, cached=cached)


def _failure(outcome: str, message: str, reason: str | None = None) -> ToolResult:
    """A failed call: `message` for the model, `reason` (default: the message) for the logs."""
    return ToolResult(False, json.dumps({"error": message}), outcome, {"error": message}, reason or message)


def _validator(spec: ToolConfig) -> Any:
    cls = jsonschema.validators.validator_for(spec.parameters, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(spec.parameters)
    except SchemaError as exc:
        raise ValueError(f"tool {spec.name}: parameters is not a valid JSON Schema: {exc.message}") from None
    return cls(spec.parameters)
