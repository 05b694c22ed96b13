"""The chat completions parameter policy (request_params.py) as a pure function: honoured within
bounds, refused with a 400 naming the parameter, nothing accepted and dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agentfleet_runtime.config import ModelConfig
from agentfleet_runtime.deadline import request_deadline
from agentfleet_runtime.errors import ApiError, UpstreamError
from agentfleet_runtime.reasoning.rules import apply_limits
from agentfleet_runtime.request_params import CHAT_PARAMETERS, ModelParams, chat_completion_params
from hypothesis import given
from hypothesis import strategies as st

LLM = ModelConfig(provider="openai-compatible", name="m", endpoint="http://llm/v1", temperature=0.3, max_tokens=100)
UNCAPPED = LLM.model_copy(update={"max_tokens": None})
RULES = ModelConfig(provider="rules", name="rules")
BODY = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}


def params(model: ModelConfig = LLM, **fields: Any) -> ModelParams:
    return chat_completion_params({**BODY, **fields}, model)


def refusal(model: ModelConfig = LLM, **fields: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        params(model, **fields)
    assert caught.value.status == 400
    return caught.value


def test_nothing_set_sends_the_agents_own_values() -> None:
    assert params().upstream() == {"temperature": 0.3, "max_tokens": 100}
    assert params(UNCAPPED).upstream() == {"temperature": 0.3}


def test_honoured_parameters_reach_the_upstream_request() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True}}
    sent = params(
        temperature=1.5,
        top_p=0.5,
        seed=7,
        presence_penalty=-1,
        frequency_penalty=2,
        stop="END",
        max_completion_tokens=20,
        response_format=schema,
    ).upstream()
    assert sent == {
        "temperature": 1.5,
        "top_p": 0.5,
        "seed": 7,
        "presence_penalty": -1,
        "frequency_penalty": 2,
        "stop": ["END"],
        "max_completion_tokens": 20,
        "response_format": schema,
    }


def test_max_tokens_is_capped_by_the_agent_and_text_format_asks_nothing() -> None:
    assert params(max_tokens=5000).upstream()["max_tokens"] == 100
    assert params(max_tokens=10).upstream()["max_tokens"] == 10
    assert params(UNCAPPED, max_tokens=5000).upstream()["max_tokens"] == 5000
    assert "response_format" not in params(response_format={"type": "text"}).upstream()
    assert params(response_format={"type": "json_object"}).upstream()["response_format"] == {"type": "json_object"}


def test_null_is_absent_and_default_values_of_refused_parameters_pass() -> None:
    assert params(temperature=None, n=None, tools=None).upstream() == params().upstream()
    assert params(n=1, logprobs=False, store=False, modalities=["text"]) == params()


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"n": 2}, "n", "unsupported_parameter"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "unsupported_parameter"),
        ({"tools": []}, "tools", "unsupported_parameter"),
        ({"tool_choice": "auto"}, "tool_choice", "unsupported_parameter"),
        ({"functions": [{"name": "f"}]}, "functions", "unsupported_parameter"),
        ({"function_call": "auto"}, "function_call", "unsupported_parameter"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls", "unsupported_parameter"),
        ({"logprobs": True}, "logprobs", "unsupported_parameter"),
        ({"top_logprobs": 2}, "top_logprobs", "unsupported_parameter"),
        ({"logit_bias": {"1": 5}}, "logit_bias", "unsupported_parameter"),
        ({"store": True}, "store", "unsupported_parameter"),
        ({"reasoning_effort": "low"}, "reasoning_effort", "unsupported_parameter"),
        ({"max_token": 5}, "max_token", "unknown_parameter"),
        ({"temperature": 2.5}, "temperature", "invalid_parameter"),
        ({"temperature": -0.1}, "temperature", "invalid_parameter"),
        ({"temperature": "hot"}, "temperature", "invalid_parameter"),
        ({"temperature": True}, "temperature", "invalid_parameter"),
        ({"temperature": float("nan")}, "temperature", "invalid_parameter"),
        ({"top_p": 1.5}, "top_p", "invalid_parameter"),
        ({"presence_penalty": 3}, "presence_penalty", "invalid_parameter"),
        ({"frequency_penalty": -3}, "frequency_penalty", "invalid_parameter"),
        ({"seed": 1.5}, "seed", "invalid_parameter"),
        ({"max_tokens": 0}, "max_tokens", "invalid_parameter"),
        ({"max_completion_tokens": "10"}, "max_completion_tokens", "invalid_parameter"),
        ({"max_tokens": 10, "max_completion_tokens": 20}, "max_completion_tokens", "invalid_parameter"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_parameter"),
        ({"stop": [""]}, "stop", "invalid_parameter"),
        ({"stop": 5}, "stop", "invalid_parameter"),
        ({"response_format": {"type": "yaml"}}, "response_format", "invalid_parameter"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "invalid_parameter"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a b"}}},
            "response_format.json_schema.name",
            "invalid_parameter",
        ),
        ({"stream_options": {"include_obfuscation": True}}, "stream_options.include_obfuscation", None),
        ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "invalid_parameter"),
    ],
)
def test_refusals_name_the_parameter(fields: dict[str, Any], param: str, code: str | None) -> None:
    error = refusal(**fields)
    assert error.param == param
    assert error.message.startswith(f"{param}: ")
    assert error.body()["error"]["param"] == param
    if code:
        assert error.code == code


def test_tool_refusal_says_where_the_tools_come_from() -> None:
    assert "Connectors" in refusal(tools=[{"type": "function"}]).message


def test_rules_refuses_json_formats_and_accepts_sampling_parameters() -> None:
    assert refusal(RULES, response_format={"type": "json_object"}).param == "response_format"
    assert params(RULES, temperature=1, seed=3, top_p=0.1, presence_penalty=1, response_format={"type": "text"})


def test_rules_apply_stop_and_max_tokens_to_the_reply() -> None:
    assert apply_limits("Hello there. Bye.", params(RULES, stop=[". "])) == ("Hello there", "stop")
    assert apply_limits("one two three four five six", params(RULES, max_tokens=2)) == ("one two ", "length")
    assert apply_limits("short", params(RULES, max_tokens=2)) == ("short", "stop")


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.none() | st.integers() | st.text(max_size=5)))
def test_every_key_is_either_in_the_table_or_refused(extra: dict[str, Any]) -> None:
    body = {**extra, **BODY}
    try:
        chat_completion_params(body, LLM)
    except ApiError as error:
        assert error.status == 400 and error.param
        assert any(error.param == key or error.param.startswith(f"{key}.") for key in body)
        return
    # Accepted: every non-null key is one the table knows (an unknown key is never let through).
    assert all(key in CHAT_PARAMETERS for key, value in body.items() if value is not None)


def deadline_for(model: ModelConfig, headers: dict[str, str]) -> Any:
    async def make() -> Any:
        return request_deadline(model, headers)

    return asyncio.run(make())


def test_the_deadline_is_the_smallest_budget_given() -> None:
    budgeted = LLM.model_copy(update={"deadline_seconds": 20})
    assert deadline_for(LLM, {}) is None
    assert deadline_for(budgeted, {}).budget == 20
    assert deadline_for(budgeted, {"x-request-timeout": "5"}).source == "X-Request-Timeout header"
    assert deadline_for(budgeted, {"x-stainless-read-timeout": "600"}).budget == 20
    assert deadline_for(LLM, {"x-stainless-read-timeout": "600.0"}).budget == 600
    with pytest.raises(ApiError) as caught:
        deadline_for(LLM, {"x-request-timeout": "soon"})
    assert caught.value.param == "X-Request-Timeout"


def test_the_504_says_what_took_the_time() -> None:
    deadline = deadline_for(LLM.model_copy(update={"deadline_seconds": 3}), {})
    deadline.attempts, deadline.last_error = 2, "timed out after 1.5 s"
    error = deadline.exceeded()
    assert isinstance(error, UpstreamError) and error.status == 504 and error.code == "model_timeout"
    assert "3 s deadline (spec.model.timeoutSeconds): 2 model attempts, the last timed out after 1.5 s" in str(error)


def test_every_parameter_the_openai_sdk_can_send_has_a_policy() -> None:
    """A parameter a newer SDK adds fails here, so it gets a decision rather than a surprise 400."""
    from openai.types.chat import completion_create_params

    sdk = set(completion_create_params.CompletionCreateParamsBase.__annotations__)
    assert sdk - set(CHAT_PARAMETERS) == set()


def test_the_openapi_document_says_what_happens_to_every_parameter() -> None:
    from agentfleet_runtime.api.openapi_docs import ChatCompletionRequest

    schema = ChatCompletionRequest.model_json_schema()
    for name, parameter in CHAT_PARAMETERS.items():
        if parameter.handling == "refused":
            assert f"- `{name}`: {parameter.doc}" in schema["description"]
        else:
            assert schema["properties"][name].get("description") or name == "stream_options"
