"""The runtime as a drop-in OpenAI endpoint, through the official `openai` SDK against real runtime
processes: every parameter honoured (it reaches the model) or refused (400 naming it), the model's
finish_reason passed through, the usage chunk, and one deadline per request (issue 15, items 1-3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import RuntimeProcess, llm_config, rules_config

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "hello there my friend"}]  # the fake answers "Echo: hello there my friend"
AGENT_MAX_TOKENS = 50
DEADLINE = 2.5  # seconds, the Agent's spec.model.timeoutSeconds in the slow runtime
MARGIN = 2.0  # what the 504 may take beyond the deadline (process, scheduling); not a speed claim


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def runtimes(llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RuntimeProcess]]:
    workdir = tmp_path_factory.mktemp("runtimes")
    model = llm_config(llm)["model"]
    started = {
        "llm": RuntimeProcess(llm_config(llm, model={**model, "maxTokens": AGENT_MAX_TOKENS}), workdir, "llm"),
        # Each attempt may take 1 s and three retries would take over 4 s: the deadline ends it first.
        "slow": RuntimeProcess(
            llm_config(llm, model={**model, "timeoutSeconds": 1, "maxRetries": 3, "deadlineSeconds": DEADLINE}),
            workdir,
            "slow",
        ),
        "undeadlined": RuntimeProcess(llm_config(llm), workdir, "undeadlined"),
        "rules": RuntimeProcess(rules_config(), workdir, "rules"),
    }
    for runtime in started.values():
        runtime.start()
    yield started
    for runtime in started.values():
        runtime.stop()


@pytest.fixture(autouse=True)
def _fresh_llm(llm: FakeLLM) -> None:
    llm.reset()


def client(runtime: RuntimeProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{runtime.url}/v1", api_key="unused", max_retries=0, timeout=30)


def create(runtime: RuntimeProcess, **params: Any) -> Any:
    return client(runtime).chat.completions.create(model="anything", messages=params.pop("messages", HELLO), **params)


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"n": 2}, "n", "one choice"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools", "Connectors"),
    ({"tool_choice": "none"}, "tool_choice", "Connectors"),
    ({"functions": [{"name": "f", "parameters": {}}]}, "functions", "Connectors"),
    ({"function_call": "none"}, "function_call", "Connectors"),
    ({"parallel_tool_calls": True}, "parallel_tool_calls", "Connectors"),
    ({"logprobs": True}, "logprobs", "log probabilities"),
    ({"top_logprobs": 3}, "top_logprobs", "log probabilities"),
    ({"logit_bias": {"50256": -100}}, "logit_bias", "not passed"),
    ({"store": True}, "store", "StatePolicy"),
    ({"extra_body": {"max_token": 5}}, "max_token", "unknown parameter"),
    ({"temperature": 2.5}, "temperature", "between 0 and 2"),
    ({"top_p": 1.1}, "top_p", "between 0 and 1"),
    ({"presence_penalty": -2.5}, "presence_penalty", "between -2 and 2"),
    ({"max_tokens": 0}, "max_tokens", "positive integer"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "no spaces"}}}, "response_format", "name"),
    ({"stream": True, "stream_options": {"include_obfuscation": True}}, "stream_options", "only include_usage"),
]


@pytest.mark.parametrize(("params", "param", "says"), REFUSED, ids=[case[1] for case in REFUSED])
def test_a_refused_parameter_is_a_400_naming_it(
    runtimes: dict[str, RuntimeProcess], llm: FakeLLM, params: dict[str, Any], param: str, says: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        create(runtimes["llm"], **params)
    error = caught.value
    assert error.status_code == 400
    assert error.param is not None and error.param.startswith(param), error.body
    assert says in error.message and param in error.message
    assert llm.request_count == 0  # refused before the model was asked


def test_honoured_parameters_reach_the_model(runtimes: dict[str, RuntimeProcess], llm: FakeLLM) -> None:
    schema = {"name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}, "strict": True}
    create(
        runtimes["llm"],
        temperature=1.3,
        top_p=0.9,
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        stop=["END", "STOP"],
        max_tokens=5000,
        response_format={"type": "json_schema", "json_schema": schema},
    )
    sent = llm.requests[-1]
    assert sent["temperature"] == 1.3 and sent["top_p"] == 0.9 and sent["seed"] == 42
    assert sent["presence_penalty"] == 0.5 and sent["frequency_penalty"] == -0.5
    assert sent["stop"] == ["END", "STOP"]
    assert sent["max_tokens"] == AGENT_MAX_TOKENS  # capped by the Agent's spec.model.maxTokens
    assert sent["response_format"] == {"type": "json_schema", "json_schema": schema}

    create(runtimes["llm"], max_completion_tokens=7, response_format={"type": "json_object"}, stop="END")
    sent = llm.requests[-1]
    assert sent["max_completion_tokens"] == 7 and "max_tokens" not in sent
    assert sent["response_format"] == {"type": "json_object"} and sent["stop"] == ["END"]


def test_without_parameters_the_model_gets_the_agents_values(runtimes: dict[str, RuntimeProcess], llm: FakeLLM) -> None:
    create(runtimes["llm"], n=1, logprobs=False)  # what they ask for is what the runtime does anyway
    sent = llm.requests[-1]
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == AGENT_MAX_TOKENS
    assert not {"top_p", "seed", "stop", "response_format", "n", "logprobs"} & set(sent)


def test_finish_reason_length_is_passed_through(runtimes: dict[str, RuntimeProcess], llm: FakeLLM) -> None:
    completion = create(runtimes["llm"], max_tokens=2)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Echo: hello"
    assert create(runtimes["llm"]).choices[0].finish_reason == "stop"

    chunks = list(create(runtimes["llm"], max_tokens=2, stream=True))
    ended = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert len(ended) == 1 and ended[0] is [c for c in chunks if c.choices][-1]
    assert ended[0].choices[0].finish_reason == "length"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello"


@pytest.mark.parametrize("stream", [False, True])
def test_content_filter_is_passed_through(runtimes: dict[str, RuntimeProcess], llm: FakeLLM, stream: bool) -> None:
    llm.finish_reason = "content_filter"
    answer = create(runtimes["llm"], stream=stream)
    reasons = [c.choices[0].finish_reason for c in answer if c.choices] if stream else [answer.choices[0].finish_reason]
    assert reasons[-1] == "content_filter"


def test_usage_chunk_only_when_asked(runtimes: dict[str, RuntimeProcess]) -> None:
    chunks = list(create(runtimes["llm"], stream=True, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks[:-1])

    plain = list(create(runtimes["llm"], stream=True))
    assert all(chunk.usage is None and chunk.choices for chunk in plain)


@pytest.mark.parametrize("stream", [False, True])
def test_a_slow_model_is_a_504_within_the_deadline(
    runtimes: dict[str, RuntimeProcess], llm: FakeLLM, stream: bool
) -> None:
    llm.delay = 60  # longer than the whole budget: every attempt times out
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        create(runtimes["slow"], stream=stream)
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert elapsed < DEADLINE + MARGIN
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "model_timeout"
    assert f"within the {DEADLINE:g} s deadline (spec.model.timeoutSeconds)" in body["message"]
    assert "model attempts, the last timed out" in body["message"]  # retries ran inside the budget
    assert llm.request_count >= 2


def test_the_callers_timeout_header_shortens_the_budget(runtimes: dict[str, RuntimeProcess], llm: FakeLLM) -> None:
    llm.delay = 60
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        create(runtimes["undeadlined"], extra_headers={"X-Request-Timeout": "1"})
    assert time.monotonic() - started < 1 + MARGIN
    assert caught.value.status_code == 504 and "X-Request-Timeout header" in caught.value.message

    # What the OpenAI SDK sends on its own (its read timeout), here as the SDK would send a 1 s timeout.
    response = httpx.post(
        f"{runtimes['undeadlined'].url}/v1/chat/completions",
        json={"messages": HELLO},
        headers={"X-Stainless-Read-Timeout": "1.0"},
        timeout=30,
    )
    assert response.status_code == 504 and "X-Stainless-Read-Timeout header" in response.json()["error"]["message"]

    with pytest.raises(openai.BadRequestError) as bad:
        create(runtimes["undeadlined"], extra_headers={"X-Request-Timeout": "soon"})
    assert bad.value.param == "X-Request-Timeout"


def test_rules_provider_parameters(runtimes: dict[str, RuntimeProcess]) -> None:
    hello = [{"role": "user", "content": "hello"}]  # the rule answers "Hello! How can I help you today?"
    plain = create(runtimes["rules"], messages=hello)
    sampled = create(runtimes["rules"], messages=hello, temperature=1.9, seed=3, top_p=0.1, presence_penalty=2)
    assert sampled.choices[0].message.content == plain.choices[0].message.content  # no effect, as documented

    cut = create(runtimes["rules"], messages=hello, max_tokens=2)
    assert cut.choices[0].finish_reason == "length" and cut.choices[0].message.content == "Hello! H"
    stopped = create(runtimes["rules"], messages=hello, stop="!", stream=True)
    pieces = [c for c in stopped if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in pieces) == "Hello"
    assert pieces[-1].choices[0].finish_reason == "stop"

    with pytest.raises(openai.BadRequestError) as caught:
        create(runtimes["rules"], messages=hello, response_format={"type": "json_object"})
    assert caught.value.param == "response_format" and "rules provider" in caught.value.message


def test_a_stream_that_outlasts_the_deadline_ends_with_the_504_event(
    runtimes: dict[str, RuntimeProcess], llm: FakeLLM
) -> None:
    llm.stream_chunk_delay = 0.6  # five words: about 3 s, beyond the 2.5 s budget, each wait shorter than 1 s
    started = time.monotonic()
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in create(runtimes["slow"], stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert "".join(received).startswith("Echo:")  # the stream had begun: 200, then the error event
    assert "deadline" in caught.value.message and "streaming" in caught.value.message


def test_the_sessions_api_has_the_same_deadline(runtimes: dict[str, RuntimeProcess], llm: FakeLLM) -> None:
    llm.delay = 60
    started = time.monotonic()
    response = httpx.post(f"{runtimes['slow'].url}/v1/sessions/s-1/messages", json={"content": "hi"}, timeout=30)
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert response.status_code == 504 and response.json()["error"]["code"] == "model_timeout"


def test_the_responses_api_honours_temperature_and_max_output_tokens(
    runtimes: dict[str, RuntimeProcess], llm: FakeLLM
) -> None:
    with client(runtimes["llm"]) as sdk:
        response = sdk.responses.create(model="m", input="hello", temperature=1.1, max_output_tokens=5000)
        sent = llm.requests[-1]
        assert sent["temperature"] == 1.1
        assert sent["max_tokens"] == AGENT_MAX_TOKENS  # capped by the Agent's spec.model.maxTokens, as for chat
        assert response.temperature == 1.1 and response.max_output_tokens == AGENT_MAX_TOKENS
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.responses.create(model="m", input="hello", temperature=3)
        assert caught.value.param == "temperature"


@pytest.mark.parametrize("stream", [False, True])
def test_the_responses_api_has_the_same_deadline(
    runtimes: dict[str, RuntimeProcess], llm: FakeLLM, stream: bool
) -> None:
    llm.delay = 60  # longer than the whole budget
    started = time.monotonic()
    with client(runtimes["slow"]) as sdk, pytest.raises(openai.APIStatusError) as caught:
        sdk.responses.create(model="m", input="hello", stream=stream)
    assert caught.value.status_code == 504
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert "spec.model.timeoutSeconds" in caught.value.message
