"""The wire shapes of the runtime's answers, pinned without a server: OpenAI's chat.completion,
its stream chunks and usage, and agentfleet's own session bodies."""

from __future__ import annotations

import json

from agentfleet_runtime.api import openai_shapes as shapes
from agentfleet_runtime.api.response_headers import turn_headers
from agentfleet_runtime.api.session_routes import history_body, reply_body
from agentfleet_runtime.memory.base import Turn
from agentfleet_runtime.reasoning.base import ReasoningResult, Usage
from agentfleet_runtime.tools.toolbox import ToolCallRecord

COMPLETION = shapes.Completion(id="chatcmpl-1", created=1700000000, model="gpt-4o-mini", system_fingerprint="bot-r1")
TOKENS = Usage(input_tokens=12, output_tokens=5)


def test_usage_counts_prompt_completion_and_total() -> None:
    assert shapes.usage(TOKENS) == {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def test_chat_completion_object() -> None:
    assert shapes.chat_completion(COMPLETION, "Hi!", "stop", TOKENS) == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "bot-r1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


def test_stream_chunks_open_with_the_role_carry_text_and_end_with_the_reason() -> None:
    first = shapes.chat_completion_chunk(COMPLETION, {"role": "assistant", "content": ""})
    text = shapes.chat_completion_chunk(COMPLETION, {"content": "Hel"})
    last = shapes.chat_completion_chunk(COMPLETION, {}, "length")
    for chunk in (first, text, last):
        assert chunk["object"] == "chat.completion.chunk" and chunk["id"] == "chatcmpl-1"
        assert chunk["system_fingerprint"] == "bot-r1" and chunk["created"] == 1700000000
    assert first["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    assert text["choices"][0]["delta"] == {"content": "Hel"}
    assert last["choices"] == [{"index": 0, "delta": {}, "finish_reason": "length"}]


def test_usage_chunk_has_no_choices() -> None:
    assert shapes.usage_chunk(COMPLETION, TOKENS) == {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


def test_server_sent_events_are_compact_and_keep_unicode() -> None:
    assert shapes.sse({"content": "Grüße, 山田"}) == 'data: {"content":"Grüße, 山田"}\n\n'.encode()
    assert shapes.sse("[DONE]") == shapes.SSE_DONE == b"data: [DONE]\n\n"
    assert json.loads(shapes.sse(shapes.chat_completion_chunk(COMPLETION, {}))[6:]) == shapes.chat_completion_chunk(
        COMPLETION, {}
    )


def test_model_list() -> None:
    assert shapes.model_list("gpt-4o-mini", "bot") == {
        "object": "list",
        "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "bot"}],
    }


def test_session_reply_and_history_bodies() -> None:
    result = ReasoningResult("Found.", [ToolCallRecord("lookup_customer", {"email": "a@b.c"}, "success")], TOKENS)
    assert reply_body("s1", result) == {
        "sessionId": "s1",
        "reply": "Found.",
        "toolCalls": [{"name": "lookup_customer", "arguments": {"email": "a@b.c"}, "outcome": "success"}],
        "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
    }
    turn = Turn(messages=[{"role": "user", "content": "hi"}], reply="Hello!", tool_calls=[], at=5.0)
    assert history_body("s1", [turn]) == {
        "sessionId": "s1",
        "turns": 1,
        "messages": [
            {"role": "user", "content": "hi", "at": 5.0},
            {"role": "assistant", "content": "Hello!", "at": 5.0, "toolCalls": []},
        ],
    }


def test_turn_headers_carry_the_revision_and_a_latin1_safe_session_id() -> None:
    assert turn_headers("r1", None) == {"X-Agent-Revision": "r1"}
    assert turn_headers("r1", "user@example.com")["X-Session-ID"] == "user@example.com"
    encoded = turn_headers("r1", "José 山田")["X-Session-ID"]
    assert encoded.isascii() and encoded == "Jos%C3%A9 %E5%B1%B1%E7%94%B0"
