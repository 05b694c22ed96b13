"""The OpenAI chat completions wire shapes the runtime answers with, as pure functions.

Clients and SDKs written for OpenAI parse these objects, so their fields follow OpenAI's API
reference exactly; keeping them apart from the routes lets unit tests pin them without a server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..reasoning.base import Usage

SSE_DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Completion:
    """What every object of one completion repeats: its id, creation time and model."""

    id: str
    created: int
    model: str
    system_fingerprint: str


def usage(tokens: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": tokens.input_tokens,
        "completion_tokens": tokens.output_tokens,
        "total_tokens": tokens.total_tokens,
    }


def chat_completion(completion: Completion, reply: str, finish_reason: str, tokens: Usage) -> dict[str, Any]:
    """The `chat.completion` object of a non-streamed answer."""
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": completion.system_fingerprint,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage(tokens),
    }


def chat_completion_chunk(
    completion: Completion, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    """One `chat.completion.chunk` of a streamed answer: a piece of text, or the end with its reason."""
    return {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": completion.system_fingerprint,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(completion: Completion, tokens: Usage) -> dict[str, Any]:
    """The last chunk when the caller asked for `stream_options.include_usage`: no choices, only usage."""
    return {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "choices": [],
        "usage": usage(tokens),
    }


def model_list(model: str, owner: str) -> dict[str, Any]:
    """`GET /v1/models`: the one model this agent answers with."""
    return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": owner}]}


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event; compact JSON, non-ASCII kept as it is."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()
