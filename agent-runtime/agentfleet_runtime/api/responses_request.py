"""Perception for `POST /v1/responses`: the OpenAI Responses request body as bounded messages, or a 400.

The same bounds as chat completions (perception.py) apply: message length, count, the conversation's
total size, a last user message. Every body parameter this runtime does not honour is refused with a
400 whose `param` names it; nothing is accepted and dropped. The parameter list is in DECISIONS below
and in the runtime's OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ApiError
from ..perception import MAX_MESSAGES, Limits, Message, normalize_text, parse_message, session_id_from

# Parameters read and honoured (model is accepted and ignored, as in chat completions: the Agent's
# configured model answers, and the response names it).
HONOURED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "stream",
        "store",
        "previous_response_id",
        "conversation",
        "user",
        "metadata",
        "temperature",  # request_params.responses_params checks and applies these two
        "max_output_tokens",
    }
)
# Values that ask for nothing beyond what the runtime does anyway, so they are not refused:
# frameworks send them explicitly.
_DEFAULTS: dict[str, Any] = {
    "tools": [],
    "include": [],
    "truncation": "disabled",
    "text": {"format": {"type": "text"}},
    "background": False,
}
# Why the commonest refusals happen, in the caller's words.
_REFUSAL_REASONS = {
    "tools": "this agent runs its own tools (its Connectors); caller-side tools are not supported",
    "tool_choice": "this agent decides its own tool calls; tool_choice is not supported",
    "parallel_tool_calls": "this agent decides its own tool calls; parallel_tool_calls is not supported",
    "top_p": "per-request top_p is not supported",
    "reasoning": "reasoning options are not supported",
    "background": "background responses are not supported; send stream: true for long answers",
    "include": "no extra output data can be included",
    "text": "only plain text output is supported",
    "truncation": "only truncation: disabled is supported",
    "prompt": "stored prompts are not supported; the Agent's prompt comes from its spec",
}


@dataclass
class ResponsesRequest:
    messages: list[Message]
    instructions: str | None = None
    stream: bool = False
    store: bool | None = None  # None: not sent (OpenAI's default is true)
    previous_response_id: str | None = None
    conversation: str | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None


def invalid(param: str, message: str, code: str = "invalid_request", status: int = 400) -> ApiError:
    return ApiError(status, message, code=code, param=param)


def refuse_unhonoured(data: dict[str, Any]) -> None:
    """400 for the first parameter this runtime would otherwise have to drop; null counts as absent."""
    for name, value in data.items():
        if name in HONOURED or value is None or (name in _DEFAULTS and value == _DEFAULTS[name]):
            continue
        reason = _REFUSAL_REASONS.get(name, "this parameter is not supported by this agent")
        raise invalid(name, f"{name}: {reason}", "unsupported_parameter")


def _part_text(part: Any, where: str, role: str) -> str:
    # Input messages carry input_text parts; an assistant message given back as context carries
    # the output_text parts it was answered with.
    accepted = "output_text" if role == "assistant" else "input_text"
    if isinstance(part, dict) and part.get("type") == accepted and isinstance(part.get("text"), str):
        return part["text"]
    kind = part.get("type") if isinstance(part, dict) else type(part).__name__
    raise invalid("input", f"{where}: only {accepted} parts are supported, got {kind!r}", "unsupported_content")


def _item_message(item: Any, where: str, limits: Limits) -> Message:
    if not isinstance(item, dict):
        raise invalid("input", f"{where} must be a message object with role and content", "invalid_message")
    kind = item.get("type", "message")
    if kind != "message":
        raise invalid(
            "input",
            f"{where}: input items of type {str(kind)[:40]!r} are not supported; send messages"
            + (" (this agent runs its tools itself)" if "call" in str(kind) else ""),
            "unsupported_input_item",
        )
    role = item.get("role")
    content = item.get("content")
    if isinstance(content, list):
        content = "\n".join(_part_text(p, f"{where}.content[{i}]", str(role)) for i, p in enumerate(content))
    elif not isinstance(content, str):
        raise invalid("input", f"{where}.content must be a string or a list of text parts", "invalid_content")
    try:
        return parse_message({"role": role, "content": content}, where, limits)
    except ApiError as exc:
        exc.param = "input"
        raise


def parse_input(raw: Any, limits: Limits) -> list[Message]:
    if isinstance(raw, str):
        items: list[Any] = [{"role": "user", "content": raw}]
        where = ["input"]
    elif isinstance(raw, list) and raw:
        items = raw
        where = [f"input[{i}]" for i in range(len(raw))]
    else:
        raise invalid("input", "input must be a string or a non-empty array of messages", "invalid_input")
    if len(items) > MAX_MESSAGES:
        raise invalid("input", f"input may hold at most {MAX_MESSAGES} items", "too_many_messages")
    messages = [_item_message(item, w, limits) for item, w in zip(items, where, strict=True)]
    if messages[-1].role != "user" or not messages[-1].content:
        raise invalid("input", "the last input item must be a non-empty user message", "empty_message")
    return messages


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(name, f"{name} must be a string")
    return value


def _metadata(raw: Any) -> dict[str, str] | None:
    # OpenAI's bounds: at most 16 pairs, keys up to 64 and values up to 512 characters.
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or len(raw) > 16
        or not all(isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512 for k, v in raw.items())
    ):
        raise invalid("metadata", "metadata must map at most 16 keys (<= 64 chars) to strings (<= 512 chars)")
    return dict(raw)


def _conversation(raw: Any) -> str | None:
    # A conversation is named by its id, as a string or as {"id": ...} (both forms of the SDK).
    value = raw.get("id") if isinstance(raw, dict) else raw
    try:
        return session_id_from(value, "conversation")
    except ApiError as exc:
        exc.param = "conversation"
        raise


def parse_responses_request(data: dict[str, Any], limits: Limits) -> ResponsesRequest:
    refuse_unhonoured(data)
    if "input" not in data:
        raise invalid("input", "input is required", "invalid_input")
    messages = parse_input(data["input"], limits)
    _optional_str(data, "model")
    instructions = _optional_str(data, "instructions")
    if instructions is not None:
        instructions = normalize_text(instructions) or None
        if instructions and len(instructions) > limits.max_message_chars:
            raise invalid(
                "instructions", f"instructions exceed {limits.max_message_chars} characters", "message_too_long"
            )
    total = sum(len(m.content) for m in messages) + len(instructions or "")
    if total > limits.max_message_chars * 4:
        raise invalid("input", "the conversation is too long; start a new conversation", "context_too_long")
    for flag in ("stream", "store"):
        if data.get(flag) is not None and not isinstance(data[flag], bool):
            raise invalid(flag, f"{flag} must be a boolean")
    previous = _optional_str(data, "previous_response_id")
    if previous is not None and not previous.startswith("resp_"):
        raise invalid("previous_response_id", "previous_response_id must be a response id (resp_...)")
    conversation = _conversation(data.get("conversation"))
    if previous is not None and conversation is not None:
        raise invalid("conversation", "send either previous_response_id or conversation, not both")
    return ResponsesRequest(
        messages=messages,
        instructions=instructions,
        stream=bool(data.get("stream")),
        store=data.get("store"),
        previous_response_id=previous,
        conversation=conversation,
        user=_optional_str(data, "user"),
        metadata=_metadata(data.get("metadata")),
    )
