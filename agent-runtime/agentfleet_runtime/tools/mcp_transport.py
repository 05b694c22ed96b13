"""How an MCP connector reaches its server: the SDK's transports on an HTTP client of ours.

Our client adds two things the SDK does not give a caller:
- credentials from the Connector's Secret on every request (`SecretAuth`), with the one refetch
  after a 401 that OAuth tokens get for http tools too;
- a record of what happened on the wire for each `tools/call` (`WireTrace`). The SDK turns a
  refused connection, a 404 for a forgotten session and a stream cut mid-answer into the same
  "Connection closed" error, but only the first two prove the server never ran the tool. Retrying
  is safe only then (or for idempotent tools), so the runtime has to know which it was.

The trace travels in a context variable: the SDK runs each request's POST in a task started in
the context of the caller that sent it, so the transport below sees the caller's trace.

Transport choice: an endpoint whose path ends in /sse speaks the legacy HTTP+SSE transport,
anything else Streamable HTTP. Nothing is guessed from errors (no fallback after a 404/405): a
wrong URL fails at once with a clear reason instead of being probed twice, and the operator's
discovery makes the same choice from the same URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import httpx2
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from .. import __version__
from .auth import ConnectorCredentials

# A stream (SSE, or the GET stream of a 2025-era session) may stay quiet this long before it
# counts as dead; single requests are bounded by the connector's timeout instead.
STREAM_READ_TIMEOUT = 300.0
# Errors raised before a single byte of the request left: the server cannot have run anything.
NOT_SENT_ERRORS = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.UnsupportedProtocol)


@dataclass
class Exchange:
    """One HTTP request of a JSON-RPC message: its method, then its status or the error that ended it."""

    method: str
    status: int | None = None
    error: BaseException | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def not_sent(self) -> bool:
        return isinstance(self.error, NOT_SENT_ERRORS)

    async def settle(self, seconds: float) -> None:
        """Wait a moment for a request still in flight: the SDK may report a closed connection
        before the POST it had sent got its answer (a 404 that proves the call never ran)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finished.wait(), seconds)


@dataclass
class WireTrace:
    exchanges: list[Exchange] = field(default_factory=list)

    def last(self, method: str) -> Exchange | None:
        return next((e for e in reversed(self.exchanges) if e.method == method), None)

    def statuses(self) -> list[int]:
        return [e.status for e in self.exchanges if e.status is not None]


current_trace: contextvars.ContextVar[WireTrace | None] = contextvars.ContextVar("mcp_wire_trace", default=None)


def _jsonrpc_method(request: httpx2.Request) -> str:
    if request.method != "POST":
        return request.method  # the GET stream, the DELETE that ends a session
    try:
        body = json.loads(request.content)
    except (ValueError, httpx2.RequestNotRead):
        return "POST"
    return str(body.get("method") or "response") if isinstance(body, dict) else "batch"


class TracingTransport(httpx2.AsyncBaseTransport):
    """The default transport, noting each request's outcome in the caller's WireTrace."""

    def __init__(self, verify: ssl.SSLContext | None = None) -> None:
        self._inner = httpx2.AsyncHTTPTransport(verify=verify if verify is not None else True)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        trace = current_trace.get()
        if trace is None:
            return await self._inner.handle_async_request(request)
        exchange = Exchange(_jsonrpc_method(request))
        trace.exchanges.append(exchange)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as exc:
            exchange.error = exc
            raise
        finally:
            exchange.finished.set()
        exchange.status = response.status_code
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class SecretAuth(httpx2.Auth):
    """The Connector's credentials on every request; after a 401 a refreshable credential (an OAuth
    token) is fetched again once, as for http tools. The request had been refused, so repeating it
    repeats nothing."""

    def __init__(self, credentials: ConnectorCredentials, token_http: httpx.AsyncClient) -> None:
        self._credentials = credentials
        self._token_http = token_http

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers.update(await self._credentials.headers(self._token_http))
        response = yield request
        if response.status_code == 401 and self._credentials.refreshable:
            self._credentials.invalidate()
            request.headers.update(await self._credentials.headers(self._token_http))
            yield request


def transport_kind(endpoint: str) -> str:
    return "sse" if urlsplit(endpoint).path.rstrip("/").endswith("/sse") else "streamable-http"


def _http_client(
    auth: httpx2.Auth | None,
    timeout: httpx2.Timeout,
    headers: dict[str, str] | None = None,
    verify: ssl.SSLContext | None = None,
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        auth=auth,
        timeout=timeout,
        headers={"User-Agent": f"agentfleet-runtime/{__version__}", **(headers or {})},
        transport=TracingTransport(verify),
    )


def open_streams(
    endpoint: str,
    credentials: ConnectorCredentials,
    token_http: httpx.AsyncClient,
    timeout: float,
    verify: ssl.SSLContext | None = None,
) -> AbstractAsyncContextManager[Any]:
    """The SDK transport for `endpoint` (read and write streams), on our traced, authenticated client.
    verify: the connector's trust (its CA bundle), None for the public CAs."""
    auth = SecretAuth(credentials, token_http)
    if transport_kind(endpoint) == "sse":

        def factory(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            assert timeout is not None  # sse_client always passes its own
            return _http_client(auth, timeout, headers, verify)

        return sse_client(
            endpoint, timeout=timeout, sse_read_timeout=STREAM_READ_TIMEOUT, httpx_client_factory=factory, auth=auth
        )
    return _streamable(endpoint, auth, httpx2.Timeout(timeout, read=STREAM_READ_TIMEOUT), verify)


@asynccontextmanager
async def _streamable(
    endpoint: str, auth: httpx2.Auth, timeout: httpx2.Timeout, verify: ssl.SSLContext | None
) -> AsyncIterator[Any]:
    # The SDK leaves a client it is handed open; this one lives exactly as long as the session.
    async with (
        _http_client(auth, timeout, verify=verify) as client,
        streamable_http_client(endpoint, http_client=client) as streams,
    ):
        yield streams
