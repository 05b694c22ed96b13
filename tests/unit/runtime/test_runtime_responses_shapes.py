"""The Responses API shapes and request parsing, pinned without a server; the objects and events are
validated with the official SDK's own models (strictly, not the lenient parse the client uses)."""

from __future__ import annotations

from typing import Any

import pytest
from agentfleet_runtime.api import responses_shapes as shapes
from agentfleet_runtime.api.responses_request import parse_responses_request
from agentfleet_runtime.errors import ApiError
from agentfleet_runtime.perception import Limits, Message
from agentfleet_runtime.reasoning.base import ReasoningResult, Usage
from agentfleet_runtime.tools.toolbox import ToolCallRecord
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

LIMITS = Limits(max_request_bytes=4096, max_message_chars=500)
HEAD = shapes.ResponseHead(
    id="resp_" + "a" * 48, created_at=1700000000, model="gpt-4o-mini", message_id="msg_1", conversation="conv_x"
)
RESULT = ReasoningResult("Hi there", [ToolCallRecord("lookup", {"q": 1}, "success")], Usage(10, 3))
EVENT = TypeAdapter(ResponseStreamEvent)


def test_a_runtime_session_is_named_by_its_response_ids_and_nothing_else_is() -> None:
    session = shapes.new_session_id()
    first, second = shapes.response_id(session), shapes.response_id(session)
    assert first != second
    assert shapes.session_of(first) == shapes.session_of(second) == session
    caller_named = shapes.response_id("jane.doe@example.com")
    assert shapes.session_of(caller_named) is None and "jane" not in caller_named
    assert shapes.session_of(shapes.response_id(None)) is None
    assert shapes.session_of("resp_" + "g" * 48) is None


@pytest.mark.parametrize(
    ("finish_reason", "status", "details"),
    [
        ("stop", "completed", None),
        ("tool_calls", "completed", None),
        ("length", "incomplete", {"reason": "max_output_tokens"}),
        ("content_filter", "incomplete", {"reason": "content_filter"}),
    ],
)
def test_finish_reason_decides_the_status(finish_reason: str, status: str, details: Any) -> None:
    body = shapes.final_response(HEAD, "cut", ReasoningResult("cut", finish_reason=finish_reason), 1700000001)
    assert (body["status"], body["incomplete_details"]) == (status, details)
    assert body["output"][0]["status"] == status
    assert body["completed_at"] == (1700000001 if status == "completed" else None)


def test_the_final_response_is_an_sdk_response() -> None:
    body = shapes.final_response(HEAD, "Hi there", RESULT, 1700000001)
    parsed = Response.model_validate(body)
    assert parsed.output_text == "Hi there"
    assert parsed.usage is not None and (parsed.usage.input_tokens, parsed.usage.total_tokens) == (10, 13)
    assert parsed.conversation is not None and parsed.conversation.id == "conv_x"
    assert body["agentfleet"] == {"tool_calls": [{"name": "lookup", "arguments": {"q": 1}, "outcome": "success"}]}
    assert [item["type"] for item in body["output"]] == ["message"]


def test_stream_events_come_in_order_numbered_and_parse_as_sdk_events() -> None:
    events = shapes.ResponseEvents(HEAD)
    sequence = [*events.opening(), events.delta("Hi"), events.delta(" there")]
    sequence += events.closing("Hi there", RESULT, 1700000001)
    assert [e["type"] for e in sequence] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in sequence] == list(range(10))
    for event in sequence:
        EVENT.validate_python(event)
    assert [e["response"]["status"] for e in sequence[:2]] == ["in_progress", "in_progress"]
    assert sequence[0]["response"]["output"] == [] and sequence[2]["item"]["status"] == "in_progress"
    assert sequence[-1]["response"]["output"][0]["content"][0]["text"] == "Hi there"
    assert {e.get("item_id") for e in sequence[3:8]} == {"msg_1"}


def test_a_cut_off_stream_ends_incomplete_and_a_failure_ends_failed() -> None:
    cut = shapes.ResponseEvents(HEAD).closing("Hi", ReasoningResult("Hi", finish_reason="length"), 1)
    assert cut[-1]["type"] == "response.incomplete"
    assert cut[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    events = shapes.ResponseEvents(HEAD)
    events.opening()
    failed = events.failure("model_timeout", "the model did not answer in time", "Hi")
    assert [e["type"] for e in failed] == ["error", "response.failed"]
    assert [e["sequence_number"] for e in failed] == [4, 5]
    assert failed[0]["code"] == "model_timeout"
    assert failed[1]["response"]["error"] == {"code": "server_error", "message": "the model did not answer in time"}
    for event in failed:
        EVENT.validate_python(event)


def test_sse_events_are_named_by_their_type() -> None:
    assert shapes.sse_event({"type": "response.output_text.delta", "delta": "ü"}) == (
        'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"ü"}\n\n'.encode()
    )


def test_request_input_forms_become_messages() -> None:
    assert parse_responses_request({"input": " hello "}, LIMITS).messages == [Message("user", "hello")]
    request = parse_responses_request(
        {
            "input": [
                {"type": "message", "role": "developer", "content": "short"},
                {"role": "assistant", "content": [{"type": "output_text", "text": "before"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
            ],
            "instructions": "  be kind ",
            "conversation": {"id": "c-1"},
            "store": False,
            "metadata": {"k": "v"},
            "model": "ignored",
            "temperature": None,
        },
        LIMITS,
    )
    assert request.messages == [Message("system", "short"), Message("assistant", "before"), Message("user", "a\nb")]
    assert (request.instructions, request.conversation, request.store, request.metadata) == (
        "be kind",
        "c-1",
        False,
        {"k": "v"},
    )


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x", "tools": [{"type": "web_search"}]}, "tools", "unsupported_parameter"),
        ({"input": "x", "parallel_tool_calls": True}, "parallel_tool_calls", "unsupported_parameter"),
        ({"input": "x", "truncation": "auto"}, "truncation", "unsupported_parameter"),
        ({"input": "x", "whatever": 1}, "whatever", "unsupported_parameter"),
        ({}, "input", "invalid_input"),
        ({"input": 3}, "input", "invalid_input"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input", "unsupported_input_item"),
        ({"input": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}, "input", "unsupported_content"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input", "invalid_role"),
        ({"input": "x" * 501}, "input", "message_too_long"),
        ({"input": "x", "instructions": "y" * 501}, "instructions", "message_too_long"),
        ({"input": "x", "stream": "yes"}, "stream", "invalid_request"),
        ({"input": "x", "store": 1}, "store", "invalid_request"),
        ({"input": "x", "previous_response_id": "abc"}, "previous_response_id", "invalid_request"),
        ({"input": "x", "conversation": "   "}, "conversation", "invalid_session_id"),
        ({"input": "x", "metadata": {"k": 1}}, "metadata", "invalid_request"),
        ({"input": "x", "user": ["u"]}, "user", "invalid_request"),
    ],
)
def test_bad_requests_name_the_parameter(body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_responses_request(body, LIMITS)
    assert (caught.value.status, caught.value.param, caught.value.code) == (400, param, code)
    assert caught.value.body()["error"]["param"] == param
