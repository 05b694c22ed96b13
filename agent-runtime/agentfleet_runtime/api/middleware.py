"""What every request passes: request ids, caller auth, in-flight gauge, request metrics, access log.

Every answer, errors and probes included, names the revision that gave it (X-Agent-Revision): a
caller or a test telling canary from stable must not lose the 5xx of a bad canary to a missing header.

Plain ASGI rather than BaseHTTPMiddleware: it neither buffers nor re-wraps streaming bodies.
Only /v1/ is API traffic: probes and /metrics need no key and are not counted. A request that
comes back to this Agent through other Agents is refused here (call_chain.py).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import call_chain
from ..errors import ApiError
from ..logging import request_id_var
from ..wiring import Runtime
from .error_responses import api_error_response

access_log = logging.getLogger("agentfleet_runtime.access")

# A caller's X-Request-ID is kept only when it is short and plain, so it is safe in logs and headers.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class ApiMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    def _chain(self, header: bytes | None) -> tuple[str, ...]:
        """The Agents this request has passed, this one appended; 508 when it has passed this one."""
        own = self.runtime.config.agent.name
        received = call_chain.parse(header.decode("latin-1") if header else None)
        if own in received:
            loop = " → ".join((*received, own))
            raise ApiError(508, f"loop detected: {loop}", type="server_error", code="loop_detected")
        return (*received, own)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        rid_header = (b"x-request-id", request_id.encode())
        revision_header = (b"x-agent-revision", self.runtime.config.agent.revision.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = list(message.get("headers", []))
                extra = [rid_header]
                if not any(name.lower() == b"x-agent-revision" for name, _ in sent):
                    extra.append(revision_header)
                message["headers"] = [*sent, *extra]
            await send(message)

        if not scope["path"].startswith("/v1/"):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                request_id_var.reset(token)
            return

        metrics = self.runtime.metrics
        started = time.perf_counter()
        metrics.inflight.inc()
        try:
            try:
                auth_header = headers.get(b"authorization")
                self.runtime.caller_auth.check(auth_header.decode("latin-1") if auth_header else None)
                chain = self._chain(headers.get(call_chain.HEADER.lower().encode()))
            except ApiError as exc:
                await api_error_response(exc)(scope, receive, send_with_id)
                return
            chain_token = call_chain.chain_var.set(chain)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                call_chain.chain_var.reset(chain_token)
        finally:
            elapsed = time.perf_counter() - started
            metrics.inflight.dec()
            metrics.request_done(status, elapsed)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)
