"""The OpenAI Responses API: `POST /v1/responses` (plain or SSE events), beside chat completions.

The same Agent turn as chat completions (prepare, reason with tools, remember), behind the same
middleware (caller auth, metrics, request id, X-Agent-Revision) and error shape. Sessions map onto
the Responses API this way:
- no `previous_response_id` / `conversation`: a new session the runtime names (`conv_...`);
- `previous_response_id`: continues the session that response id names (responses_shapes);
- `conversation`: a session id of the caller's choosing (what X-Session-ID is for chat completions);
- `store: false`: the history is read when continuing, but nothing of this exchange is remembered.
`instructions` are the caller's system message for this turn only: placed right after the Agent's
own prompt, never stored (OpenAI does not carry them over to the next response either).
"""

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
from ..errors import ApiError, UpstreamError
from ..perception import read_json_body
from ..reasoning.base import ReasoningResult
from ..request_params import ModelParams, responses_params
from ..wiring import Runtime
from . import openapi_docs
from . import responses_shapes as shapes
from .error_responses import guarded
from .response_headers import turn_headers
from .responses_request import ResponsesRequest, invalid, parse_responses_request

log = logging.getLogger("agentfleet_runtime.api")


def responses_router(runtime: Runtime) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/responses",
        openapi_extra=openapi_docs.request_body(openapi_docs.ResponsesRequest),
        responses={
            200: {
                "model": openapi_docs.ResponseObject,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **openapi_docs.error_responses(400, 401, 404, 413, 415, 502, 503, 504, 508),
        },
    )
    @guarded
    async def create_response(request: Request) -> Response:
        data = await read_json_body(request, runtime.limits)
        req = parse_responses_request(data, runtime.limits)
        params = responses_params(data, runtime.config.model)
        # The same overall budget as chat completions: spec.model.timeoutSeconds and the caller's header.
        deadline = request_deadline(runtime.config.model, request.headers)
        turn = await _prepare(runtime, req)
        head = _head(runtime, req, turn.session_id, params)
        revision = runtime.config.agent.revision
        if not req.stream:
            result = await runtime.agent.reason(turn, params, deadline)
            body = shapes.final_response(head, result.reply, result, int(time.time()))
            return JSONResponse(body, headers=turn_headers(revision, turn.session_id, turn.cache))
        return await _stream(runtime, turn, head, params, deadline)

    return router


async def _session(runtime: Runtime, req: ResponsesRequest) -> tuple[str | None, bool]:
    """The session this turn reads and writes, and whether it has history to continue."""
    stateful = runtime.agent.memory is not None
    if not stateful:
        for param in ("previous_response_id", "conversation"):
            if getattr(req, param) is not None:
                raise invalid(param, f"{param}: this agent keeps no sessions (it has no StatePolicy)")
        if req.store:
            raise invalid("store", "store: this agent keeps no sessions (it has no StatePolicy)")
        return None, False
    if req.previous_response_id is not None:
        session = shapes.session_of(req.previous_response_id)
        if session is None or not await runtime.agent.history(session):
            raise invalid(
                "previous_response_id",
                f"previous response {req.previous_response_id!r} not found (expired, erased, made with "
                "store: false, or stored in a named conversation: continue those with conversation)",
                "previous_response_not_found",
                status=404,
            )
        return session, True
    if req.conversation is not None:
        return req.conversation, True
    return shapes.new_session_id(), False


async def _prepare(runtime: Runtime, req: ResponsesRequest) -> PreparedTurn:
    agent = runtime.agent
    session, continuing = await _session(runtime, req)
    # A new session has no history, so every input item is new (prepare would keep only those after
    # the last assistant item, which is right only for a stored conversation the caller re-sends).
    turn = await agent.prepare(session if continuing else None, req.messages)
    turn.session_id = session if req.store is not False else None
    if req.instructions:
        at = 1 if agent.system_prompt else 0
        turn.conversation.insert(at, {"role": "system", "content": req.instructions})
    return turn


def _head(runtime: Runtime, req: ResponsesRequest, stored_in: str | None, params: ModelParams) -> shapes.ResponseHead:
    model = runtime.config.model
    return shapes.ResponseHead(
        id=shapes.response_id(stored_in),
        created_at=int(time.time()),
        model=model.name,
        message_id=f"msg_{uuid.uuid4().hex}",
        instructions=req.instructions,
        previous_response_id=req.previous_response_id,
        conversation=stored_in,
        metadata=req.metadata or {},
        user=req.user,
        temperature=params.temperature if model.provider != "rules" else None,
        max_output_tokens=params.max_tokens,
    )


async def _stream(
    runtime: Runtime,
    turn: PreparedTurn,
    head: shapes.ResponseHead,
    params: ModelParams,
    deadline: Deadline | None,
) -> Response:
    events = runtime.agent.reason_stream(turn, params, deadline)
    # As for chat completions: a model or store failing before the first event is a plain HTTP error.
    first = await anext(events)
    numbered = shapes.ResponseEvents(head)

    async def body() -> AsyncIterator[bytes]:
        for opening in numbered.opening():
            yield shapes.sse_event(opening)
        event, parts = first, []
        try:
            while not isinstance(event, ReasoningResult):
                parts.append(event)
                yield shapes.sse_event(numbered.delta(event))
                event = await anext(events)
            # The text the caller was streamed is the text the response reports.
            for closing in numbered.closing("".join(parts), event, int(time.time())):
                yield shapes.sse_event(closing)
        except (ApiError, UpstreamError) as exc:
            message = str(exc) if isinstance(exc, UpstreamError) else exc.message
            for failed in numbered.failure(exc.code, message, "".join(parts)):
                yield shapes.sse_event(failed)
        except Exception:
            log.exception("stream failed")
            for failed in numbered.failure("internal_error", "internal error", "".join(parts)):
                yield shapes.sse_event(failed)
        finally:
            await events.aclose()

    headers = {
        **turn_headers(runtime.config.agent.revision, turn.session_id, turn.cache),
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
