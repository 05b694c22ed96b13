"""The OpenAI-compatible part: `POST /v1/chat/completions` (plain or SSE) and `GET /v1/models`."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..agent import PreparedTurn
from ..deadline import Deadline, request_deadline
from ..errors import ApiError, UpstreamError, error_body
from ..perception import ChatRequest, parse_chat_request, read_json_body
from ..reasoning.base import ReasoningResult
from ..request_params import ModelParams, chat_completion_params
from ..wiring import Runtime
from . import openai_shapes as shapes
from . import openapi_docs
from .error_responses import guarded, log_upstream_failure
from .response_headers import turn_headers

log = logging.getLogger("agentfleet_runtime.api")


def chat_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()
    config = runtime.config

    @router.post(
        "/v1/chat/completions",
        openapi_extra={
            **openapi_docs.request_body(openapi_docs.ChatCompletionRequest),
            **openapi_docs.timeout_headers(),
        },
        responses={
            200: {
                "model": openapi_docs.ChatCompletion,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **openapi_docs.error_responses(400, 401, 413, 415, 502, 503, 504, 508),
        },
    )
    @guarded
    async def chat_completions(request: Request) -> Response:
        data = await read_json_body(request, runtime.limits)
        chat = parse_chat_request(data, request.headers.get("x-session-id"), runtime.limits)
        params = chat_completion_params(data, config.model)
        deadline = request_deadline(config.model, request.headers)
        completion = shapes.Completion(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=config.model.name,
            system_fingerprint=f"{config.agent.name}-{config.agent.revision}",
        )
        turn = await runtime.agent.prepare(chat.session_id, chat.messages)
        if not chat.stream:
            result = await runtime.agent.reason(turn, params, deadline)
            return JSONResponse(
                shapes.chat_completion(completion, result.reply, result.finish_reason, result.usage),
                headers=turn_headers(config.agent.revision, chat.session_id, turn.cache),
            )
        return await _stream(runtime, chat, turn, completion, params, deadline)

    @router.get("/v1/models")
    @guarded
    async def models() -> Response:
        return JSONResponse(shapes.model_list(config.model.name, config.agent.name))

    return router


async def _stream(
    runtime: Runtime,
    chat: ChatRequest,
    turn: PreparedTurn,
    completion: shapes.Completion,
    params: ModelParams,
    deadline: Deadline | None,
) -> Response:
    events = runtime.agent.reason_stream(turn, params, deadline)
    # Wait for the first event before answering, so a failing model or store still gets a
    # proper HTTP status instead of an error buried in a 200 stream.
    first = await anext(events)

    async def body() -> AsyncIterator[bytes]:
        yield shapes.sse(shapes.chat_completion_chunk(completion, {"role": "assistant", "content": ""}))
        event = first
        try:
            while True:
                if isinstance(event, ReasoningResult):
                    yield shapes.sse(shapes.chat_completion_chunk(completion, {}, event.finish_reason))
                    if chat.include_usage:
                        yield shapes.sse(shapes.usage_chunk(completion, event.usage))
                    break
                yield shapes.sse(shapes.chat_completion_chunk(completion, {"content": event}))
                event = await anext(events)
        except (ApiError, UpstreamError) as exc:
            # Headers are gone by now: the error travels as the stream's last event, before [DONE].
            if isinstance(exc, UpstreamError):
                log_upstream_failure(exc)
            message = str(exc) if isinstance(exc, UpstreamError) else exc.message
            yield shapes.sse(error_body(message, exc.type if isinstance(exc, ApiError) else "upstream_error", exc.code))
        except Exception:
            log.exception("stream failed")
            yield shapes.sse(error_body("internal error", "server_error", "internal_error"))
        finally:
            await events.aclose()
        yield shapes.SSE_DONE

    headers = {
        **turn_headers(runtime.config.agent.revision, chat.session_id, turn.cache),
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
