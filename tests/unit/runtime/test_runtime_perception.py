from __future__ import annotations

import pytest
from agentfleet_runtime.errors import ApiError
from agentfleet_runtime.perception import (
    Limits,
    normalize_text,
    parse_chat_request,
    parse_session_message,
    session_id_from,
)

LIMITS = Limits(max_request_bytes=10_000, max_message_chars=100)


def chat(*messages: dict, **extra: object) -> dict:
    return {"messages": list(messages), **extra}


def test_normalization_strips_controls_and_composes_unicode() -> None:
    assert normalize_text("e\u0301") == "\u00e9"
    assert normalize_text("a\x00b\x7fc\n") == "abc"
    assert normalize_text("line1\nline2\tx") == "line1\nline2\tx"


def test_text_parts_are_joined_and_developer_maps_to_system() -> None:
    request = parse_chat_request(
        chat(
            {"role": "developer", "content": "rules"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            stream=True,
            stream_options={"include_usage": True},
            user="u-1",
        ),
        None,
        LIMITS,
    )
    assert [(m.role, m.content) for m in request.messages] == [("system", "rules"), ("user", "a\nb")]
    assert request.stream and request.include_usage and request.session_id == "u-1"


def test_header_session_wins_over_user_field() -> None:
    request = parse_chat_request(chat({"role": "user", "content": "hi"}, user="u"), "hdr", LIMITS)
    assert request.session_id == "hdr"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_messages"),
        (chat(), "invalid_messages"),
        (chat({"role": "user", "content": "   "}), "empty_message"),
        (chat({"role": "assistant", "content": "x"}), "empty_message"),
        (chat({"role": "tool", "content": "x"}), "invalid_role"),
        (chat("just a string"), "invalid_message"),
        (chat({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}), "unsupported_content"),
        (chat({"role": "user", "content": 5}), "invalid_content"),
        (chat({"role": "user", "content": "x" * 101}), "message_too_long"),
        (chat({"role": "user", "content": "x"}, stream="yes"), "invalid_stream"),
        (chat({"role": "user", "content": "x"}, user="a\x00b"), "invalid_session_id"),
        (chat({"role": "user", "content": "x"}, user=7), "invalid_session_id"),
    ],
)
def test_bad_requests_are_4xx_with_a_code(body: dict, code: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_chat_request(body, None, LIMITS)
    assert 400 <= info.value.status < 500
    assert info.value.code == code


@pytest.mark.parametrize("role", [[], {}, ["user"], 5, None])
def test_a_role_that_is_not_a_string_is_a_4xx(role: object) -> None:
    # Found by the raw fuzz test: {"messages": [{"role": []}]} answered 500 (unhashable role).
    with pytest.raises(ApiError) as info:
        parse_chat_request(chat({"role": role, "content": "x"}), None, LIMITS)
    assert info.value.status == 400 and info.value.code == "invalid_role"


def test_session_message_bounds() -> None:
    assert parse_session_message({"content": " hi "}, LIMITS).content == "hi"
    for body in ({}, {"content": ""}, {"content": 3}, {"content": "y" * 101}):
        with pytest.raises(ApiError):
            parse_session_message(body, LIMITS)


def test_session_ids() -> None:
    assert session_id_from(None, "x") is None
    assert session_id_from("ada@example.com", "x") == "ada@example.com"
    with pytest.raises(ApiError):
        session_id_from("s" * 300, "x")


def test_null_stream_is_absent() -> None:
    assert parse_chat_request(chat({"role": "user", "content": "hi"}, stream=None), None, LIMITS).stream is False
