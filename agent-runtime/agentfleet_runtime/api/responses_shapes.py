"""The OpenAI Responses wire shapes the runtime answers with, as pure functions: ids, the response
object, its output message and the streaming events in their order.

Fields follow the official SDK's models (openai/types/responses), which its `responses.create` and
`responses.stream` helpers parse; keeping them apart from the route lets unit tests pin them.

Ids carry the session: a response stored in a session the runtime named (`conv_<32 hex>`) has the id
`resp_<those 32 hex><16 hex of its own>`, so `previous_response_id` finds the session again with no
index to keep. Responses that were not stored, or were stored in a conversation the caller named,
get `resp_<32 hex>`: no caller-chosen id (often an e-mail address) is ever folded into a response id.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from ..reasoning.base import ReasoningResult, Usage

_RUNTIME_SESSION = re.compile(r"^conv_([0-9a-f]{32})$")
_CONTINUABLE_RESPONSE = re.compile(r"^resp_([0-9a-f]{32})[0-9a-f]{16}$")
# finish_reason of the model → why the response is incomplete (Response.incomplete_details.reason).
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_session_id() -> str:
    return f"conv_{secrets.token_hex(16)}"


def response_id(session_id: str | None) -> str:
    """A new response id; it names `session_id` when the runtime named that session."""
    match = _RUNTIME_SESSION.match(session_id or "")
    if match:
        return f"resp_{match.group(1)}{secrets.token_hex(8)}"
    return f"resp_{secrets.token_hex(16)}"


def session_of(response_id: str) -> str | None:
    """The session a response id names, or None when it names none (not stored, or a caller's conversation)."""
    match = _CONTINUABLE_RESPONSE.match(response_id)
    return f"conv_{match.group(1)}" if match else None


def outcome(finish_reason: str) -> tuple[str, dict[str, str] | None]:
    """The response status and incomplete_details for the model's finish_reason."""
    reason = _INCOMPLETE_REASONS.get(finish_reason)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


@dataclass(frozen=True)
class ResponseHead:
    """What every snapshot of one response repeats."""

    id: str
    created_at: int
    model: str
    message_id: str
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | None = None  # the session this exchange is stored in; None when nothing is stored
    metadata: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None


def usage(tokens: Usage) -> dict[str, Any]:
    # Cached and reasoning tokens are not measured by the runtime; the SDK requires the fields.
    return {
        "input_tokens": tokens.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": tokens.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens.total_tokens,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(head: ResponseHead, text: str | None, status: str) -> dict[str, Any]:
    """The assistant's output message; text None = no content part yet (the stream's first snapshot)."""
    return {
        "type": "message",
        "id": head.message_id,
        "status": status,
        "role": "assistant",
        "content": [] if text is None else [output_text(text)],
    }


def response_object(
    head: ResponseHead,
    *,
    status: str,
    output: list[dict[str, Any]],
    tokens: Usage | None = None,
    incomplete_details: dict[str, str] | None = None,
    error: dict[str, str] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    completed_at: int | None = None,
) -> dict[str, Any]:
    """The `response` object. The tools the agent ran are not output items: a function_call item would
    tell the SDK and agent frameworks that the caller must run it. They are in `agentfleet.tool_calls`."""
    return {
        "id": head.id,
        "object": "response",
        "created_at": head.created_at,
        "status": status,
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": head.instructions,
        "metadata": head.metadata,
        "model": head.model,
        "output": output,
        "parallel_tool_calls": False,
        "previous_response_id": head.previous_response_id,
        "conversation": {"id": head.conversation} if head.conversation else None,
        "store": head.conversation is not None,
        "temperature": head.temperature,
        "max_output_tokens": head.max_output_tokens,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "background": False,
        "usage": usage(tokens) if tokens is not None else None,
        "user": head.user,
        "agentfleet": {"tool_calls": tool_calls or []},
    }


def final_response(head: ResponseHead, text: str, result: ReasoningResult, completed_at: int) -> dict[str, Any]:
    """The finished response: one message with the text, status from the model's finish_reason."""
    status, details = outcome(result.finish_reason)
    return response_object(
        head,
        status=status,
        output=[message_item(head, text, status)],
        tokens=result.usage,
        incomplete_details=details,
        tool_calls=[call.to_json() for call in result.tool_calls],
        completed_at=completed_at if status == "completed" else None,
    )


class ResponseEvents:
    """The streaming events of one response, numbered in the order they are made.

    response.created, response.in_progress, response.output_item.added, response.content_part.added,
    response.output_text.delta (many), response.output_text.done, response.content_part.done,
    response.output_item.done, then response.completed (or response.incomplete when the model
    stopped early); a failure ends the stream with an `error` event and response.failed.
    """

    def __init__(self, head: ResponseHead) -> None:
        self.head = head
        self._sequence = 0

    def _event(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.head.message_id, "output_index": 0, "content_index": 0}

    def opening(self) -> list[dict[str, Any]]:
        snapshot = response_object(self.head, status="in_progress", output=[])
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
            self._event(
                "response.output_item.added", output_index=0, item=message_item(self.head, None, "in_progress")
            ),
            self._event("response.content_part.added", **self._where(), part=output_text("")),
        ]

    def delta(self, text: str) -> dict[str, Any]:
        return self._event("response.output_text.delta", **self._where(), delta=text, logprobs=[])

    def closing(self, text: str, result: ReasoningResult, completed_at: int) -> list[dict[str, Any]]:
        final = final_response(self.head, text, result, completed_at)
        return [
            self._event("response.output_text.done", **self._where(), text=text, logprobs=[]),
            self._event("response.content_part.done", **self._where(), part=output_text(text)),
            self._event("response.output_item.done", output_index=0, item=final["output"][0]),
            self._event(f"response.{final['status']}", response=final),
        ]

    def failure(self, code: str, message: str, text_so_far: str) -> list[dict[str, Any]]:
        # Response.error.code is one of OpenAI's own codes; the runtime's code travels in the error event.
        error = {"code": "rate_limit_exceeded" if code == "model_rate_limited" else "server_error", "message": message}
        output = [message_item(self.head, text_so_far, "incomplete")]
        return [
            self._event("error", code=code, message=message, param=None),
            self._event(
                "response.failed", response=response_object(self.head, status="failed", output=output, error=error)
            ),
        ]


def sse_event(event: dict[str, Any]) -> bytes:
    """One server-sent event named by its type, as the Responses API sends them."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()
