"""Sessions by id: post a message, read the history, erase it everywhere (right to erasure)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..deadline import request_deadline
from ..errors import ApiError
from ..memory.base import Turn
from ..perception import parse_session_message, read_json_body, session_id_from
from ..reasoning.base import ReasoningResult
from ..wiring import Runtime
from . import openapi_docs
from .error_responses import guarded
from .response_headers import turn_headers


def reply_body(session_id: str | None, result: ReasoningResult) -> dict[str, Any]:
    """The answer to `POST /v1/sessions/{id}/messages` (camelCase: agentfleet's own API, not OpenAI's)."""
    return {
        "sessionId": session_id,
        "reply": result.reply,
        "toolCalls": [call.to_json() for call in result.tool_calls],
        "usage": {
            "inputTokens": result.usage.input_tokens,
            "outputTokens": result.usage.output_tokens,
            "totalTokens": result.usage.total_tokens,
        },
    }


def history_body(session_id: str, turns: list[Turn]) -> dict[str, Any]:
    """The stored exchanges as one message list; each turn's reply follows its messages."""
    messages: list[dict[str, Any]] = []
    for turn in turns:
        messages.extend({**m, "at": turn.at} for m in turn.messages)
        messages.append({"role": "assistant", "content": turn.reply, "at": turn.at, "toolCalls": turn.tool_calls})
    return {"sessionId": session_id, "turns": len(turns), "messages": messages}


def session_router(runtime: Runtime) -> APIRouter:
    # The handlers' names are the OpenAPI operation ids (FastAPI derives them): keep them.
    router = APIRouter()

    @router.post(
        "/v1/sessions/{session_id}/messages",
        openapi_extra={
            **openapi_docs.request_body(openapi_docs.SessionMessageRequest),
            **openapi_docs.timeout_headers(),
        },
        responses={
            200: {"model": openapi_docs.SessionMessageResponse},
            **openapi_docs.error_responses(400, 401, 413, 415, 502, 503, 504),
        },
    )
    @guarded
    async def session_message(request: Request, session_id: str) -> Response:
        sid = session_id_from(session_id, "session id")
        data = await read_json_body(request, runtime.limits)
        message = parse_session_message(data, runtime.limits)
        deadline = request_deadline(runtime.config.model, request.headers)
        turn = await runtime.agent.prepare(sid, [message])
        result = await runtime.agent.reason(turn, deadline=deadline)
        headers = turn_headers(runtime.config.agent.revision, sid, turn.cache)
        return JSONResponse(reply_body(sid, result), headers=headers)

    @router.get(
        "/v1/sessions/{session_id}",
        responses={200: {"model": openapi_docs.SessionHistory}, **openapi_docs.error_responses(400, 401, 404)},
    )
    @guarded
    async def session_history(session_id: str) -> Response:
        sid = session_id_from(session_id, "session id")
        assert sid is not None
        turns = await runtime.agent.history(sid)
        if not turns:
            raise ApiError(404, "session not found (never started, expired or erased)", code="session_not_found")
        return JSONResponse(history_body(sid, turns))

    @router.delete("/v1/sessions/{session_id}", status_code=204, responses=openapi_docs.error_responses(400, 401, 503))
    @guarded
    async def session_erase(session_id: str) -> Response:
        sid = session_id_from(session_id, "session id")
        assert sid is not None
        await runtime.agent.erase(sid)
        return Response(status_code=204)

    return router
