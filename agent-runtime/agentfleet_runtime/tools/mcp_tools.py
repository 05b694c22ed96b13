"""Tools of `type: mcp` Connectors: `tools/call` over one persistent MCP session per connector.

The operator discovered the tools and wrote them into the config; the runtime trusts that list
(it never lists tools at start) and calls each by the server's own name (`remoteName`, else the
name). The session is opened on the first call, by a task that owns the SDK's async context
managers for as long as the session lives (they must be entered and left in one task), and is
closed when the runtime stops.

What may be repeated, and when:
- a session that could not be opened, or a call the wire trace proves never reached the server
  (connection refused) or that the server refused unseen (404 for a forgotten session, 429/503):
  nothing ran, so it is safe for every tool;
- a call that was sent and then timed out or lost its answer: only for tools the server declares
  read-only or idempotent (`idempotent` in the config), since creating a ticket twice is worse
  than an explained failure;
- a session lost under an established connection (the server restarted: its sessions are gone,
  or its stream closed) is reopened once per call and the call repeated once, without waiting
  and without counting as a retry, so a restart costs one reconnect instead of failing every
  later call.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
from collections.abc import Iterator
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, CallToolResult, Implementation
from pydantic import ValidationError

from .. import __version__
from ..config import ConnectorConfig, ToolConfig
from ..retry_delay import TOOL_RETRIES, retry_delay
from ..tls import untrusted_message
from .auth import CredentialsError
from .connector import ConnectorClient, ToolError
from .mcp_results import tool_result_data
from .mcp_transport import WireTrace, current_trace, open_streams, transport_kind

log = logging.getLogger(__name__)

# Statuses that mean the server did not run the request: a session it does not know (it
# restarted), or an explicit "not now".
_NOT_PROCESSED = {404, 429, 503}
_AUTH_REFUSED = {401, 403}
CLOSE_TIMEOUT = 5.0
SETTLE_SECONDS = 1.0


@dataclass(eq=False)
class Failure(Exception):
    """Why one attempt failed, and what that allows: `sent` = the server may have run the tool,
    `transient` = a later attempt may succeed, `lost` = the session is unusable and is replaced,
    `reopen` = the server lost the session without running the call, so one new session and one
    repeat are free (no wait, not a retry, not a breaker failure). `message` is the runtime's words,
    `detail` the server's (ToolError: shown to the model, not logged)."""

    outcome: str
    message: str
    sent: bool = False
    transient: bool = False
    lost: bool = False
    reopen: bool = False
    detail: str | None = None


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups: the SDK's task groups wrap what went wrong."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _http_status_failure(name: str, status: int, *, sent: bool) -> Failure | None:
    if status in _AUTH_REFUSED:
        return Failure("auth_error", f"{name} refused the connector's credentials (HTTP {status})")
    if status in (404, 405):
        return Failure("protocol_error", f"{name} has no MCP endpoint at the configured URL (HTTP {status})")
    if status == 429 or status >= 500:
        return Failure("unreachable", f"{name} answered HTTP {status}", sent=sent, transient=True)
    return None


def classify_connect_error(name: str, exc: BaseException, trace: WireTrace) -> Failure:
    """A session that could not be opened: no tool call was sent, whatever the reason."""
    leaves = list(_leaves(exc))
    for leaf in leaves:
        if isinstance(leaf, CredentialsError):
            return Failure("auth_error", str(leaf))
    statuses = [s for s in trace.statuses() if s >= 400]
    statuses += [leaf.response.status_code for leaf in leaves if isinstance(leaf, httpx2.HTTPStatusError)]
    for status in statuses:
        failure = _http_status_failure(name, status, sent=False)
        if failure is not None:
            return failure
    for error in [*leaves, *(e.error for e in trace.exchanges if e.error is not None)]:
        untrusted = untrusted_message(name, error, "the Connector's spec.caBundleSecretRef")
        if untrusted is not None:  # the same certificate next time: not transient
            return Failure("tls_error", untrusted)
    for leaf in leaves:
        if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
            return Failure("timeout", f"{name} did not answer in time (connecting)", transient=True)
        if isinstance(leaf, httpx2.TransportError):
            return Failure("unreachable", f"{name} did not answer ({type(leaf).__name__})", transient=True)
    for leaf in leaves:
        if isinstance(leaf, MCPError):
            return Failure("protocol_error", f"{name}: the MCP handshake failed", detail=leaf.message)
    return Failure("protocol_error", f"{name}: the MCP handshake failed ({type(leaves[0]).__name__})")


def classify_call_error(name: str, exc: BaseException, trace: WireTrace) -> Failure:
    """A `tools/call` that raised: what the wire trace says about whether the server ran it."""
    exchange = trace.last("tools/call")
    not_sent = exchange is None or exchange.not_sent
    if isinstance(exc, TimeoutError) or (isinstance(exc, MCPError) and exc.code == REQUEST_TIMEOUT):
        # Sent and unanswered: the server may be working on it. A session that could not even
        # send it in time is stuck and is replaced.
        return Failure("timeout", f"{name} did not answer in time", sent=not not_sent, transient=True, lost=True)
    if exchange is not None and exchange.status is not None and exchange.status >= 400:
        status = exchange.status
        if status == 404:  # the session is gone (the server restarted); it never saw the call
            return Failure(
                "unreachable", f"{name} no longer knows this session (HTTP 404)", transient=True, lost=True, reopen=True
            )
        failure = _http_status_failure(name, status, sent=status not in _NOT_PROCESSED)
        if failure is not None:
            failure.lost = failure.transient
            return failure
    if isinstance(exc, MCPError) and exc.code != CONNECTION_CLOSED:
        # A JSON-RPC error from the server (unknown tool, invalid params): it is up and said no.
        return Failure("protocol_error", f"{name} rejected the call", sent=True, detail=exc.message)
    if isinstance(exc, MCPError | httpx2.TransportError | BaseExceptionGroup) or not_sent:
        # The connection under the session broke: refused (the server is gone or restarting) or
        # closed (its stream ended). Only a call that never left may be repeated on a new session.
        reason = type(exchange.error).__name__ if exchange is not None and exchange.error else "connection closed"
        return Failure(
            "unreachable",
            f"{name} did not answer ({reason})",
            sent=not not_sent,
            transient=True,
            lost=True,
            reopen=not_sent,
        )
    if isinstance(exc, ValidationError | RuntimeError):
        # The SDK checks results against the tool's output schema; a server that breaks its own
        # schema has run the tool.
        return Failure("protocol_error", f"{name} sent an invalid result for the call", sent=True)
    return Failure("protocol_error", f"{name}: the call failed ({type(exc).__name__})", sent=True)


class _Session:
    """One open MCP session, held by the task that opened it until it is told to stop or the
    transport under it ends (the server went away)."""

    def __init__(self, connector: McpConnectorClient) -> None:
        self._connector = connector
        self.client: Client | None = None
        self.failure: Failure | None = None
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        # A context of its own: the session outlives the request that opened it (and its request id).
        self._task = asyncio.create_task(
            self._own(), name=f"mcp-session-{connector.config.name}", context=contextvars.Context()
        )

    @property
    def usable(self) -> bool:
        return self.client is not None and not self.ended and not self._stop.is_set()

    @property
    def ended(self) -> bool:
        """The owning task has left the SDK's context managers: the session is closed."""
        return self._task.done()

    async def _own(self) -> None:
        config = self._connector.config
        trace = WireTrace()
        current_trace.set(trace)  # this task's own context: the handshake's requests are traced here
        try:
            async with AsyncExitStack() as stack:
                try:
                    async with asyncio.timeout(config.timeout_seconds):
                        transport = open_streams(
                            config.endpoint,
                            self._connector.credentials,
                            self._connector.http,
                            config.timeout_seconds,
                            verify=self._connector.verify,
                        )
                        client = Client(
                            transport, client_info=Implementation(name="agentfleet-runtime", version=__version__)
                        )
                        self.client = await stack.enter_async_context(client)
                except Exception as exc:
                    log.debug("mcp connect failed", exc_info=True)
                    self.failure = classify_connect_error(config.name, exc, trace)
                    return
                log.info(
                    "mcp session opened",
                    extra={
                        "connector": config.name,
                        "transport": transport_kind(config.endpoint),
                        "protocol": self.client.protocol_version,
                    },
                )
                self.ready.set()
                await self._stop.wait()
        except Exception as exc:
            # The transport ended under the session (the server went away, its stream closed).
            if self.failure is None and not self.ready.is_set():
                self.failure = classify_connect_error(config.name, exc, trace)
            log.debug("mcp session ended", extra={"connector": config.name, "error": type(exc).__name__})
        finally:
            self.ready.set()  # waiters learn the outcome either way: a client, or `failure`

    async def aclose(self) -> None:
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), CLOSE_TIMEOUT)
        except TimeoutError:
            # A server that does not answer the goodbye: stop waiting for it.
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        except Exception:  # the owner already recorded why it ended
            pass


class McpConnectorClient(ConnectorClient):
    """A Connector of type mcp: its tools are called over one MCP session, opened lazily."""

    def __init__(self, config: ConnectorConfig, http: httpx.AsyncClient, verify: ssl.SSLContext | None = None) -> None:
        super().__init__(config, http)
        self.verify = verify  # the trust of the SDK's HTTP client: the connector's CA bundle, or None (public CAs)
        self._session: _Session | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self.sessions_opened = 0

    @property
    def session(self) -> _Session | None:
        """The current session, if one is open or opening."""
        return self._session

    async def _open_session(self) -> _Session:
        # No await between the look and the replacement: calls that arrive while a session is
        # being opened wait for that one instead of opening their own.
        session = self._session
        if self._closed:  # a call still in flight at shutdown must not open a session nobody closes
            raise Failure("unreachable", f"{self.config.name} is not available: the runtime is stopping")
        if session is None or (session.ready.is_set() and not session.usable):
            session = self._session = _Session(self)
            self.sessions_opened += 1
        await session.ready.wait()
        if session.failure is not None:
            raise session.failure
        if not session.usable:
            raise Failure("unreachable", f"{self.config.name} closed the session", transient=True)
        return session

    def _drop(self, session: _Session) -> None:
        """Close a session that failed, in the background: the call that noticed does not wait for
        the goodbye, and the runtime's close waits for every one of these."""
        if self._session is session:
            self._session = None
        task = asyncio.create_task(session.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _attempt(self, remote_name: str, args: dict[str, Any]) -> CallToolResult:
        """One attempt within the connector's timeout: the session (opened if need be), then the call."""
        name = self.config.name
        trace = WireTrace()
        session: _Session | None = None
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                session = await self._open_session()
                assert session.client is not None
                token = current_trace.set(trace)  # the call's requests are traced here
                try:
                    return await session.client.call_tool(remote_name, args)
                finally:
                    current_trace.reset(token)
        except Failure:
            raise
        except Exception as exc:
            if session is None:  # the deadline passed while the session was being opened
                raise Failure("timeout", f"{name} did not answer in time (connecting)", transient=True) from None
            exchange = trace.last("tools/call")
            if exchange is not None and not isinstance(exc, TimeoutError):
                await exchange.settle(min(SETTLE_SECONDS, self.config.timeout_seconds))
            failure = classify_call_error(name, exc, trace)
            if failure.lost:
                self._drop(session)
            raise failure from None

    async def call(self, tool: ToolConfig, args: dict[str, Any]) -> Any:
        name = self.config.name
        if self._closed:
            raise ToolError("unreachable", f"{name} is not available: the runtime is stopping")
        await self.admit()
        try:
            await self.credentials.headers(self.http)  # a missing Secret key is named before any request
        except CredentialsError as exc:
            raise ToolError("auth_error", str(exc)) from None
        remote_name = tool.remote_name or tool.name
        attempts, attempt, reopened = self.config.retries + 1, 0, False
        while True:
            attempt += 1
            had_session = self._session is not None and self._session.usable
            try:
                result = await self._attempt(remote_name, args)
            except Failure as failure:
                if failure.reopen and had_session and not reopened:
                    # The server lost our session (restart) without running the call: reopen once, repeat once.
                    reopened = True
                    attempt -= 1
                    log.warning("mcp session lost; reopening it", extra={"connector": name, "reason": failure.message})
                    continue
                if failure.transient:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()  # it answered; the request was what failed
                repeatable = failure.transient and (not failure.sent or bool(tool.idempotent))
                if attempt < attempts and repeatable and self.breaker.allow():
                    await asyncio.sleep(retry_delay(attempt, None, TOOL_RETRIES))
                    continue
                raise ToolError(failure.outcome, failure.message, detail=failure.detail) from None
            self.breaker.record_success()
            return tool_result_data(result, tool.name)

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            self._drop(self._session)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
