"""Connector tools over HTTP (types http and webhook): requests, auth, retries and the breaker.

A tool failure is an answer, not an exception: the model (or the rules reasoner) gets a short
error text and can tell the caller that a system is unavailable, instead of the request failing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import httpx

from ..config import ToolConfig
from ..retry_delay import TOOL_RETRIES, retry_delay
from ..tls import untrusted_message
from .auth import CredentialsError
from .connector import ConnectorClient, ToolError

# Statuses that mean "the request was not processed, try again" for any method; the others
# are retried only for methods that are safe to repeat.
_RETRY_ANY = {429, 503}
_RETRY_IDEMPOTENT = {500, 502, 504}
_IDEMPOTENT = {"GET", "PUT", "DELETE"}


class HttpConnectorClient(ConnectorClient):
    """A Connector of type http or webhook: each tool is one HTTP request to the endpoint."""

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
        method = "POST" if self.config.type == "webhook" else tool.method
        await self.admit()
        timeout = self.config.timeout_seconds
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
                untrusted = untrusted_message(name, exc, "the Connector's spec.caBundleSecretRef")
                if untrusted is not None:
                    raise ToolError("tls_error", untrusted) from None
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
                raise ToolError("http_error", f"{name} answered HTTP {status}", detail=_snippet(response.text))
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
