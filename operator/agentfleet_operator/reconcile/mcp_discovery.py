"""Ask an MCP server which tools it offers (tools/list), with the official MCP SDK as the client.

The answer becomes the Connector's status.tools and ToolsDiscovered condition, and through them
the tools (with their schemas) of every Agent using the Connector. One call opens a session, lists
every page, and closes it, all within one timeout: a hung server costs this call its timeout and
nothing else (it runs beside the reconciles, reconcile/tool_discovery.py).

The SDK reports HTTP failures as protocol errors inside exception groups; which HTTP status the
server answered is taken from the HTTP client's own response hook instead, so a refused token is
AuthFailed and not a vague ProtocolError.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
from agentfleet_contract.tls_errors import untrusted_certificate
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from ..api import reasons
from ..builders.mcp_tools import ServerTool

# A server that pages forever must not keep discovery busy.
MAX_PAGES = 50


@dataclass(frozen=True)
class DiscoveryResult:
    ok: bool
    reason: str  # Discovered | Unreachable | Timeout | AuthFailed | ProtocolError
    message: str
    tools: tuple[ServerTool, ...] = field(default=())


def legacy_sse(endpoint: str) -> bool:
    """The legacy HTTP+SSE transport is served under .../sse by convention (and by the SDK)."""
    return urlsplit(endpoint).path.rstrip("/").endswith("/sse")


def where(endpoint: str) -> str:
    """The endpoint without userinfo or query, which may carry credentials: safe for a status."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


async def _list(
    endpoint: str, headers: dict[str, str], timeout: float, statuses: list[int], verify: ssl.SSLContext | None
) -> list[ServerTool]:
    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    trust: ssl.SSLContext | bool = verify if verify is not None else True
    if legacy_sse(endpoint):
        transport: Any = sse_client(
            endpoint,
            headers=headers,
            timeout=timeout,
            sse_read_timeout=timeout,
            httpx_client_factory=lambda **kw: httpx2.AsyncClient(
                **kw, verify=trust, event_hooks={"response": [record]}
            ),
        )
        http = None
    else:
        http = httpx2.AsyncClient(headers=headers, timeout=timeout, verify=trust, event_hooks={"response": [record]})
        transport = streamable_http_client(endpoint, http_client=http)
    tools: list[ServerTool] = []
    try:
        async with Client(transport, read_timeout_seconds=timeout, cache=None) as client:
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
                for tool in page.tools:
                    hints = tool.annotations
                    idempotent = bool(hints and (hints.read_only_hint or hints.idempotent_hint))
                    tools.append(ServerTool(tool.name, tool.description or "", dict(tool.input_schema), idempotent))
                cursor = page.next_cursor
                if not cursor:
                    break
    finally:
        if http is not None:
            await http.aclose()
    return tools


def _failure(endpoint: str, exc: BaseException, statuses: list[int], timeout: float) -> DiscoveryResult:
    at = where(endpoint)
    refused = [s for s in statuses if s in (401, 403)]
    if refused:
        return DiscoveryResult(
            False, reasons.AUTH_FAILED, f"the MCP server at {at} refused the credentials (HTTP {refused[0]})"
        )
    leaves = list(_leaves(exc))
    for leaf in leaves:
        why = untrusted_certificate(leaf)
        if why is not None:
            return DiscoveryResult(
                False,
                reasons.UNREACHABLE,
                f"the MCP server at {at} presented a TLS certificate that is not trusted ({why}); "
                "if a private CA signed it, set spec.caBundleSecretRef",
            )
    if any(isinstance(leaf, TimeoutError | httpx2.TimeoutException) for leaf in leaves):
        return DiscoveryResult(False, reasons.TIMEOUT, f"the MCP server at {at} did not answer within {timeout:g}s")
    if any(isinstance(leaf, httpx2.TransportError | OSError) for leaf in leaves):
        first = next(leaf for leaf in leaves if isinstance(leaf, httpx2.TransportError | OSError))
        return DiscoveryResult(
            False, reasons.UNREACHABLE, f"cannot reach the MCP server at {at}: {type(first).__name__}"
        )
    bad = [s for s in statuses if s >= 400]
    if bad:
        return DiscoveryResult(
            False,
            reasons.PROTOCOL_ERROR,
            f"{at} answered HTTP {bad[0]}: is it an MCP endpoint (Streamable HTTP, or .../sse)?",
        )
    detail = next((leaf for leaf in leaves if isinstance(leaf, MCPError)), leaves[0] if leaves else exc)
    return DiscoveryResult(
        False, reasons.PROTOCOL_ERROR, f"the MCP server at {at}: {type(detail).__name__}: {detail}"[:500]
    )


async def discover_tools(
    endpoint: str, headers: dict[str, str], timeout: float, verify: ssl.SSLContext | None = None
) -> DiscoveryResult:
    """Every tool the server offers, or why there is no answer. Never raises (but for cancellation).
    verify: the Connector's trust (its CA bundle); None: the public CAs."""
    statuses: list[int] = []
    try:
        tools = await asyncio.wait_for(_list(endpoint, headers, timeout, statuses, verify), timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the SDK raises anything from its transports; each becomes a reason
        return _failure(endpoint, exc, statuses, timeout)
    return DiscoveryResult(True, reasons.DISCOVERED, f"{len(tools)} tool(s) offered by {where(endpoint)}", tuple(tools))
