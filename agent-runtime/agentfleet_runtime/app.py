"""The HTTP API of an agent pod (shared/API.md, "Runtime HTTP API")."""

from __future__ import annotations

import functools
import json
import logging
import re
import string
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, openapi_docs
from .agent import Agent
from .auth import CallerAuth
from .config import RuntimeConfig
from .errors import ApiError, UpstreamError, error_body
from .logging import request_id_var
from .memory.base import SessionMemory
from .memory.crypto import RecordCipher
from .memory.memory_store import InMemoryBackend
from .memory.redaction import Redactor
from .metrics import CONTENT_TYPE, RuntimeMetrics
from .perception import Limits, parse_chat_request, parse_session_message, read_json_body, session_id_from
from .reasoning.base import Reasoner, ReasoningResult
from .reasoning.openai_compatible import OpenAICompatibleReasoner
from .reasoning.rules import RulesReasoner
from .tools.http_tools import ToolBox

log = logging.getLogger("agentfleet_runtime.api")
access_log = logging.getLogger("agentfleet_runtime.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_HEADER_SAFE = string.punctuation.replace("%", "") + " "


@dataclass
class Runtime:
    """Everything the handlers share, built once from the configuration."""

    config: RuntimeConfig
    metrics: RuntimeMetrics
    caller_auth: CallerAuth
    agent: Agent
    memory: SessionMemory | None
    http: httpx.AsyncClient
    limits: Limits
    redactor: Redactor

    async def aclose(self) -> None:
        await self.agent.reasoner.aclose()
        if self.memory is not None:
            await self.memory.aclose()
        await self.http.aclose()


def build_memory(config: RuntimeConfig, redactor: Redactor) -> SessionMemory | None:
    state = config.state
    if state is None:
        return None
    if state.store == "redis":
        from .memory.redis_store import RedisBackend  # redis is only needed when configured

        assert state.redis_url is not None
        backend: Any = RedisBackend(state.redis_url, ttl_seconds=state.ttl_seconds, max_turns=state.max_turns,
                                    password_file=state.redis_password_file)
    else:
        backend = InMemoryBackend(ttl_seconds=state.ttl_seconds, max_turns=state.max_turns)
    cipher = RecordCipher.from_file(state.encryption_key_file) if state.encryption_key_file else None
    return SessionMemory(backend, namespace=config.agent.namespace, agent=config.agent.name,
                         redactor=redactor, cipher=cipher)


def build_runtime(config: RuntimeConfig, *, metrics: RuntimeMetrics | None = None) -> Runtime:
    metrics = metrics or RuntimeMetrics(config.agent.name, config.agent.revision)
    redactor = Redactor(config.state.redaction if config.state else [])
    http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        follow_redirects=False,
        headers={"User-Agent": f"agentfleet-runtime/{__version__}"},
    )
    tools = ToolBox(config.connectors, http, metrics)
    reasoner: Reasoner
    if config.model.provider == "rules":
        reasoner = RulesReasoner(config.model)
    else:
        reasoner = OpenAICompatibleReasoner(config.model, http, metrics)
    memory = build_memory(config, redactor)
    agent = Agent(system_prompt=config.system_prompt, reasoner=reasoner, tools=tools, memory=memory)
    return Runtime(
        config=config,
        metrics=metrics,
        caller_auth=CallerAuth(config.access.api_keys_dir),
        agent=agent,
        memory=memory,
        http=http,
        limits=Limits(config.server.max_request_bytes, config.server.max_message_chars),
        redactor=redactor,
    )


def _json_error(status: int, message: str, type: str, code: str) -> JSONResponse:
    return JSONResponse(error_body(message, type, code), status_code=status)


def _api_error(exc: ApiError) -> JSONResponse:
    return _json_error(exc.status, exc.message, exc.type, exc.code)


def _upstream_error(exc: UpstreamError) -> JSONResponse:
    return _json_error(exc.status, str(exc), "upstream_error", exc.code)


def guarded(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Every failure becomes an error body in the one shape; nothing escapes as a bare 500."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(*args, **kwargs)
        except ApiError as exc:
            return _api_error(exc)
        except UpstreamError as exc:
            return _upstream_error(exc)
        except Exception:
            log.exception("unhandled error")
            return _json_error(500, "internal error", "server_error", "internal_error")

    return wrapper


class ApiMiddleware:
    """Request ids, caller auth, in-flight gauge, request metrics and the access log.

    Plain ASGI rather than BaseHTTPMiddleware: it neither buffers nor re-wraps streaming bodies.
    """

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        rid_header = (b"x-request-id", request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
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
            except ApiError as exc:
                await _api_error(exc)(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            metrics.inflight.dec()
            metrics.request_done(status, elapsed)
            access_log.info("request", extra={"method": scope["method"], "path": scope["path"],
                                              "status": status, "duration_ms": round(elapsed * 1000, 2)})
            request_id_var.reset(token)


def _openai_usage(result: ReasoningResult) -> dict[str, int]:
    return {"prompt_tokens": result.usage.input_tokens, "completion_tokens": result.usage.output_tokens,
            "total_tokens": result.usage.total_tokens}


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def create_app(config: RuntimeConfig, *, runtime: Runtime | None = None) -> FastAPI:
    rt = runtime or build_runtime(config)
    model_name = config.model.name
    fingerprint = f"{config.agent.name}-{config.agent.revision}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("runtime started", extra={"provider": config.model.provider, "tools": list(rt.agent.tools.tools),
                                           "state": config.state.store if config.state else "stateless"})
        try:
            yield
        finally:
            await rt.aclose()
            log.info("runtime stopped")

    app = FastAPI(title="agentfleet agent runtime", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.runtime = rt

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _json_error(exc.status_code, str(exc.detail), "invalid_request_error",
                           codes.get(exc.status_code, "http_error"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _json_error(400, "invalid request parameters", "invalid_request_error", "invalid_request")

    def headers_for(session_id: str | None) -> dict[str, str]:
        headers = {"X-Agent-Revision": config.agent.revision}
        if session_id:
            # Header values must be latin-1; an id such as "José Müller" or "山田" would otherwise make
            # the response fail with a 500 after the turn was stored. Non-ASCII ids are percent-encoded.
            headers["X-Session-ID"] = session_id if session_id.isascii() else quote(session_id, safe=_HEADER_SAFE)
        return headers

    @app.post(
        "/v1/chat/completions",
        openapi_extra=openapi_docs.request_body(openapi_docs.ChatCompletionRequest),
        responses={200: {"model": openapi_docs.ChatCompletion,
                         "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                   **openapi_docs.error_responses(400, 401, 413, 415, 502, 503, 504)},
    )
    @guarded
    async def chat_completions(request: Request) -> Response:
        data = await read_json_body(request, rt.limits)
        chat = parse_chat_request(data, request.headers.get("x-session-id"), rt.limits)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not chat.stream:
            result = await rt.agent.respond(chat.session_id, chat.messages)
            return JSONResponse({
                "id": completion_id, "object": "chat.completion", "created": created, "model": model_name,
                "system_fingerprint": fingerprint,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result.reply},
                             "finish_reason": result.finish_reason, "logprobs": None}],
                "usage": _openai_usage(result),
            }, headers=headers_for(chat.session_id))

        events = rt.agent.respond_stream(chat.session_id, chat.messages)
        # Wait for the first event before answering, so a failing model or store still gets a
        # proper HTTP status instead of an error buried in a 200 stream.
        first = await anext(events)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                         "model": model_name, "system_fingerprint": fingerprint,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        async def body() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            event = first
            try:
                while True:
                    if isinstance(event, ReasoningResult):
                        yield chunk({}, event.finish_reason)
                        if chat.include_usage:
                            yield _sse({"id": completion_id, "object": "chat.completion.chunk",
                                        "created": created, "model": model_name, "choices": [],
                                        "usage": _openai_usage(event)})
                        break
                    yield chunk({"content": event})
                    event = await anext(events)
            except (ApiError, UpstreamError) as exc:
                code = exc.code
                yield _sse(error_body(str(exc) if isinstance(exc, UpstreamError) else exc.message,
                                      "upstream_error", code))
            except Exception:
                log.exception("stream failed")
                yield _sse(error_body("internal error", "server_error", "internal_error"))
            finally:
                await events.aclose()
            yield b"data: [DONE]\n\n"

        headers = {**headers_for(chat.session_id), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    @app.post(
        "/v1/sessions/{session_id}/messages",
        openapi_extra=openapi_docs.request_body(openapi_docs.SessionMessageRequest),
        responses={200: {"model": openapi_docs.SessionMessageResponse},
                   **openapi_docs.error_responses(400, 401, 413, 415, 502, 503, 504)},
    )
    @guarded
    async def session_message(request: Request, session_id: str) -> Response:
        sid = session_id_from(session_id, "session id")
        data = await read_json_body(request, rt.limits)
        message = parse_session_message(data, rt.limits)
        result = await rt.agent.respond(sid, [message])
        return JSONResponse({
            "sessionId": sid,
            "reply": result.reply,
            "toolCalls": [call.to_json() for call in result.tool_calls],
            "usage": {"inputTokens": result.usage.input_tokens, "outputTokens": result.usage.output_tokens,
                      "totalTokens": result.usage.total_tokens},
        }, headers=headers_for(sid))

    @app.get("/v1/sessions/{session_id}",
             responses={200: {"model": openapi_docs.SessionHistory}, **openapi_docs.error_responses(400, 401, 404)})
    @guarded
    async def session_history(session_id: str) -> Response:
        sid = session_id_from(session_id, "session id")
        assert sid is not None
        turns = await rt.agent.history(sid)
        if not turns:
            raise ApiError(404, "session not found (never started, expired or erased)", code="session_not_found")
        messages: list[dict[str, Any]] = []
        for turn in turns:
            messages.extend({**m, "at": turn.at} for m in turn.messages)
            messages.append({"role": "assistant", "content": turn.reply, "at": turn.at,
                             "toolCalls": turn.tool_calls})
        return JSONResponse({"sessionId": sid, "turns": len(turns), "messages": messages})

    @app.delete("/v1/sessions/{session_id}", status_code=204,
                responses=openapi_docs.error_responses(400, 401, 503))
    @guarded
    async def session_erase(session_id: str) -> Response:
        sid = session_id_from(session_id, "session id")
        assert sid is not None
        await rt.agent.erase(sid)
        return Response(status_code=204)

    @app.get("/v1/models")
    @guarded
    async def models() -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": model_name, "object": "model", "created": 0, "owned_by": config.agent.name}]})

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> Response:
        store_ok = True if rt.memory is None else await rt.memory.ping()
        checks = {"config": "ok", "stateStore": "ok" if store_ok else "unreachable"}
        ready = store_ok
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(rt.metrics.render(), media_type=CONTENT_TYPE)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in openapi_docs.REQUEST_MODELS:
                definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(definition.pop("$defs", {}))
                components[model.__name__] = definition
            schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, operations in schema["paths"].items():
                if path.startswith("/v1/"):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(ApiMiddleware, runtime=rt)
    return app
