"""Agent connectors: another Agent as one tool, asked over its OpenAI-compatible API.

The tool takes one message, sends it to the target's `POST /v1/chat/completions` (non-streaming)
with the target's caller key as a bearer token (mounted by the operator, `auth.tokenFile`) and
returns the target's reply text. Failures are answers, as for http tools (tools/http_tools.py): the
model hears that the other agent is unavailable instead of the request failing.

Calls carry the chain of Agents the request has passed (call_chain.py), so a loop the operator did
not catch ends at the first runtime that sees itself again (508 Loop Detected).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from ..call_chain import HEADER as CHAIN_HEADER
from ..call_chain import chain_var, render
from ..config import ConnectorConfig, ToolConfig
from ..deadline import current_deadline
from ..logging import request_id_var
from ..retry_delay import TOOL_RETRIES, retry_delay
from ..tls import untrusted_message
from .auth import CredentialsError
from .connector import ConnectorClient, ToolError

# The target did not process the request: safe to send again. A chat turn is never idempotent
# (the target may have called its own tools), so nothing else is repeated.
_RETRY = {429, 503}
LOOP_DETECTED = 508


class AgentConnectorClient(ConnectorClient):
    """One agent connector: the target's endpoint and key, a breaker and a bucket of its own."""

    def __init__(self, config: ConnectorConfig, http: httpx.AsyncClient) -> None:
        super().__init__(config, http)
        self.target = config.agent or config.name

    def _request(self, message: str) -> tuple[str, dict[str, Any]]:
        url = f"{self.config.endpoint.rstrip('/')}/v1/chat/completions"
        # The target's runtime answers with its own model whatever is named; its name says whom we ask.
        return url, {"model": self.target, "messages": [{"role": "user", "content": message}]}

    def _headers(self, auth: dict[str, str]) -> dict[str, str]:
        headers = {**auth, CHAIN_HEADER: render(chain_var.get())}
        deadline = current_deadline.get()
        if deadline is not None:
            headers["X-Request-Timeout"] = f"{max(deadline.remaining(), 0.001):.3f}"
        request_id = request_id_var.get()
        if request_id:
            headers["X-Request-ID"] = request_id  # one id across the agents of one request, for the logs
        return headers

    async def call(self, tool: ToolConfig, args: dict[str, Any]) -> Any:
        target = self.target
        await self.admit()
        timeout = self.config.timeout_seconds
        url, body = self._request(str(args.get("message", "")))
        attempts, attempt = self.config.retries + 1, 0
        while True:
            attempt += 1
            try:
                headers = self._headers(await self.credentials.headers(self.http))
            except CredentialsError as exc:
                raise ToolError("auth_error", str(exc)) from None
            try:
                response = await self.http.post(url, json=body, headers=headers, timeout=timeout)
            except httpx.HTTPError as exc:
                self.breaker.record_failure()
                untrusted = untrusted_message(f"agent {target}", exc, "the Connector's spec.caBundleSecretRef")
                if untrusted is not None:
                    raise ToolError("tls_error", untrusted) from None
                # Only a connection never made is surely unseen by the target.
                retryable = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt < attempts and retryable and self.breaker.allow():
                    await asyncio.sleep(retry_delay(attempt, None, TOOL_RETRIES))
                    continue
                outcome = "timeout" if isinstance(exc, httpx.TimeoutException) else "unreachable"
                raise ToolError(outcome, f"agent {target} did not answer ({type(exc).__name__})") from None
            if response.status_code in _RETRY and attempt < attempts and self.breaker.allow():
                self.breaker.record_failure()
                await asyncio.sleep(retry_delay(attempt, response.headers.get("retry-after"), TOOL_RETRIES))
                continue
            return self._answer(response)

    def _answer(self, response: httpx.Response) -> str:
        target, status = self.target, response.status_code
        if status == LOOP_DETECTED:
            self.breaker.record_success()  # the target is well; the question went round in a circle
            raise ToolError("loop_detected", f"agent {target} refused the call", detail=_error_message(response))
        if status >= 500 or status in _RETRY:
            self.breaker.record_failure()
            raise ToolError("http_error", f"agent {target} answered HTTP {status}", detail=_error_message(response))
        self.breaker.record_success()
        if status >= 400:
            raise ToolError("http_error", f"agent {target} answered HTTP {status}", detail=_error_message(response))
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise ToolError("invalid_response", f"agent {target} sent no reply text")
        return content


def _error_message(response: httpx.Response, limit: int = 300) -> str:
    """The runtime's error body ({"error": {"message"}}) when there is one; never a bearer token,
    which only ever travels in the request."""
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text or response.reason_phrase
    return message[:limit] + ("..." if len(message) > limit else "")
