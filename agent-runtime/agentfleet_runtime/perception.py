"""Perception: turn whatever a caller sent into bounded, normalized messages, or a clear 4xx.

Everything a request carries is checked here, before any model, tool or store sees it, so
the layers behind can trust their input and a bad request never becomes a 500.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from .errors import ApiError, bad_request

MAX_MESSAGES = 512
MAX_SESSION_ID_CHARS = 256
_ACCEPTED_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
# C0/C1 control characters except tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass
class Message:
    role: str
    content: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass
class ChatRequest:
    messages: list[Message]
    session_id: str | None = None
    stream: bool = False
    include_usage: bool = False
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Limits:
    max_request_bytes: int
    max_message_chars: int


def normalize_text(text: str) -> str:
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


async def read_json_body(request: Request, limits: Limits) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(
            415, f"unsupported content type {content_type!r}; send application/json", code="unsupported_media_type"
        )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise bad_request("invalid Content-Length header")
        if int(declared) > limits.max_request_bytes:
            raise _too_large(limits)
    chunks, size = [], 0
    async for chunk in request.stream():  # counted as it arrives, so chunked bodies are bounded too
        size += len(chunk)
        if size > limits.max_request_bytes:
            raise _too_large(limits)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise bad_request("request body is empty; send a JSON object", "empty_body")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad_request("request body is not valid JSON", "invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("request body must be a JSON object", "invalid_json")
    return data


def _too_large(limits: Limits) -> ApiError:
    return ApiError(413, f"request body exceeds {limits.max_request_bytes} bytes", code="request_too_large")


def _content_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad_request(
                    f"{where}.content[{index}]: only text parts are supported, got {kind!r}", "unsupported_content"
                )
            parts.append(part["text"])
        return "\n".join(parts)
    raise bad_request(f"{where}.content must be a string or a list of text parts", "invalid_content")


def parse_message(raw: Any, where: str, limits: Limits) -> Message:
    if not isinstance(raw, dict):
        raise bad_request(f"{where} must be an object with role and content", "invalid_message")
    role = raw.get("role")
    # isinstance first: a list or object as role is unhashable and made the lookup itself raise (a 500).
    if not isinstance(role, str) or role not in _ACCEPTED_ROLES:
        raise bad_request(
            f"{where}.role must be one of system, developer, user, assistant; got {str(role)[:40]!r}"
            + (" (this agent runs its tools itself)" if role in ("tool", "function") else ""),
            "invalid_role",
        )
    text = normalize_text(_content_text(raw.get("content"), where))
    if len(text) > limits.max_message_chars:
        raise bad_request(f"{where}.content exceeds {limits.max_message_chars} characters", "message_too_long")
    return Message(_ACCEPTED_ROLES[role], text)


def session_id_from(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_request(f"{where} must be a string", "invalid_session_id")
    value = value.strip()
    if not value or len(value) > MAX_SESSION_ID_CHARS or _CONTROL.search(value) or "\n" in value:
        raise bad_request(f"{where} must be 1-{MAX_SESSION_ID_CHARS} printable characters", "invalid_session_id")
    return value


def parse_chat_request(data: dict[str, Any], header_session: str | None, limits: Limits) -> ChatRequest:
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise bad_request("messages must be a non-empty array", "invalid_messages")
    if len(raw_messages) > MAX_MESSAGES:
        raise bad_request(f"messages may hold at most {MAX_MESSAGES} entries", "too_many_messages")
    messages = [parse_message(m, f"messages[{i}]", limits) for i, m in enumerate(raw_messages)]
    if messages[-1].role != "user" or not messages[-1].content:
        raise bad_request("the last message must be a non-empty user message", "empty_message")
    total = sum(len(m.content) for m in messages)
    if total > limits.max_message_chars * 4:
        raise bad_request("the conversation is too long; start a new session", "context_too_long")
    stream = data.get("stream")
    stream = False if stream is None else stream  # null is absent, as for every parameter
    if not isinstance(stream, bool):
        raise bad_request("stream must be a boolean", "invalid_stream")
    options = data.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    model = data.get("model")
    session = session_id_from(header_session, "X-Session-ID header") or session_id_from(data.get("user"), "user")
    return ChatRequest(messages, session, stream, include_usage, model if isinstance(model, str) else None)


def parse_session_message(data: dict[str, Any], limits: Limits) -> Message:
    content = data.get("content")
    if not isinstance(content, str):
        raise bad_request("content must be a string", "invalid_content")
    text = normalize_text(content)
    if not text:
        raise bad_request("content is empty", "empty_message")
    if len(text) > limits.max_message_chars:
        raise bad_request(f"content exceeds {limits.max_message_chars} characters", "message_too_long")
    return Message("user", text)
