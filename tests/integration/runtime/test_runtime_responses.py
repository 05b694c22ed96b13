"""`POST /v1/responses` with the official openai SDK against a runtime process: plain and streamed
answers, the agent's own tool loop (fake CRM), sessions through previous_response_id / conversation /
store, refused parameters, caller auth and the revision header. Only the model is a fake server."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis as redis_client

from tests.fakes.crm import FakeCRM
from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import (
    RuntimeProcess,
    crm_connector,
    free_port,
    llm_config,
    rules_config,
    runtime_client,
    wait_until,
)

pytestmark = pytest.mark.integration

KEY = "caller-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SYSTEM = {"role": "system", "content": "You are the support assistant of ACME."}
ASK = "please look up customer ada@example.com"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def crm() -> Iterator[FakeCRM]:
    with FakeCRM() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def runtime(llm: FakeLLM, crm: FakeCRM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """One runtime process for the module: memory sessions, caller keys, the CRM as a tool."""
    workdir = tmp_path_factory.mktemp("responses")
    keys = workdir / "keys"
    keys.mkdir()
    (keys / "caller").write_text(KEY + "\n")
    config = llm_config(
        llm, state={"store": "memory"}, access={"apiKeysDir": str(keys)}, connectors=[crm_connector(crm)]
    )
    process = RuntimeProcess(config, workdir).start()
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def fresh_fakes(llm: FakeLLM, crm: FakeCRM) -> None:
    llm.reset()
    crm.hits.clear()


@pytest.fixture
def client(runtime: RuntimeProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{runtime.url}/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def history(runtime: RuntimeProcess, session_id: str) -> httpx.Response:
    return httpx.get(f"{runtime.url}/v1/sessions/{session_id}", headers=AUTH)


def test_create_answers_with_the_models_text(client: openai.OpenAI, llm: FakeLLM) -> None:
    raw = client.responses.with_raw_response.create(model="anything", input="hello there")
    response = raw.parse()
    assert raw.headers["x-agent-revision"] == "r1"
    assert response.output_text == "Echo: hello there"
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.incomplete_details is None
    assert response.model == "fake-model"  # the Agent's model, whatever the caller named
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens > 0
    assert llm.requests[0]["messages"] == [SYSTEM, {"role": "user", "content": "hello there"}]


def test_input_messages_and_instructions_reach_the_model_instructions_only_once(
    client: openai.OpenAI, llm: FakeLLM
) -> None:
    first = client.responses.create(
        model="m",
        instructions="Answer in French.",
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_text", "text": "you"}]},
        ],
    )
    assert first.output_text == "Echo: hi\nyou"
    assert first.instructions == "Answer in French."
    assert llm.requests[0]["messages"] == [
        SYSTEM,
        {"role": "system", "content": "Answer in French."},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi\nyou"},
    ]
    client.responses.create(model="m", input="again", previous_response_id=first.id)
    # Instructions are not carried over to the next response (as with OpenAI); the input is.
    assert llm.requests[1]["messages"] == [
        SYSTEM,
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi\nyou"},
        {"role": "assistant", "content": "Echo: hi\nyou"},
        {"role": "user", "content": "again"},
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_the_agent_runs_its_tool_and_answers_with_the_result(
    client: openai.OpenAI, llm: FakeLLM, crm: FakeCRM, stream: bool
) -> None:
    llm.respond_with_tool_call(r"customer (?P<email>\S+@\S+)", "lookup_customer", {"email": "{email}"})
    if stream:
        with client.responses.stream(model="m", input=ASK) as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(model="m", input=ASK)
    assert "Ada Lovelace" in response.output_text
    assert crm.hits["/customers"] == 1
    assert llm.requests[1]["messages"][-1]["role"] == "tool"
    # Only the message is output: a function_call item would have the caller run the tool again.
    assert [item.type for item in response.output] == ["message"]
    assert response.model_extra is not None
    [call] = response.model_extra["agentfleet"]["tool_calls"]
    assert call == {"name": "lookup_customer", "arguments": {"email": "ada@example.com"}, "outcome": "success"}


def test_stream_sends_the_responses_events_in_order(client: openai.OpenAI, runtime: RuntimeProcess) -> None:
    with client.responses.stream(model="m", input="one two three four") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [event.type for event in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert types[4:-4] == ["response.output_text.delta"] * len(deltas) and len(deltas) >= 4
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "".join(deltas) == final.output_text == "Echo: one two three four"
    assert final.status == "completed" and final.usage is not None and final.usage.output_tokens > 0
    assert final.conversation is not None
    assert history(runtime, final.conversation.id).json()["turns"] == 1

    # The same events through create(stream=True), on the wire as `event:` + `data:` pairs.
    raw = httpx.post(f"{runtime.url}/v1/responses", headers=AUTH, json={"input": "hi", "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-agent-revision"] == "r1"
    blocks = [block.splitlines() for block in raw.text.strip().split("\n\n")]
    assert all(lines[0] == f"event: {json.loads(lines[1][6:])['type']}" for lines in blocks)
    streamed = [event.type for event in client.responses.create(model="m", input="hi", stream=True)]
    assert streamed == [json.loads(lines[1][6:])["type"] for lines in blocks]


def test_previous_response_id_continues_the_session(
    client: openai.OpenAI, llm: FakeLLM, runtime: RuntimeProcess
) -> None:
    first = client.responses.create(model="m", input="my name is Ada")
    second = client.responses.create(model="m", input="what is my name?", previous_response_id=first.id)
    assert llm.requests[1]["messages"] == [
        SYSTEM,
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "Echo: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]
    assert second.previous_response_id == first.id
    assert first.conversation is not None and second.conversation is not None
    assert second.conversation.id == first.conversation.id
    assert history(runtime, first.conversation.id).json()["turns"] == 2
    # A third turn from the second id continues the same session.
    client.responses.create(model="m", input="and now?", previous_response_id=second.id)
    assert len(llm.requests[2]["messages"]) == 6


def test_unknown_previous_response_is_404(client: openai.OpenAI, llm: FakeLLM) -> None:
    unknown = "resp_" + "ab" * 24
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="m", input="hi", previous_response_id=unknown)
    assert caught.value.param == "previous_response_id" and caught.value.code == "previous_response_not_found"
    assert llm.request_count == 0


def test_store_false_remembers_nothing(client: openai.OpenAI, llm: FakeLLM, runtime: RuntimeProcess) -> None:
    alone = client.responses.create(model="m", input="forget me", store=False)
    assert alone.output_text == "Echo: forget me" and alone.conversation is None
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="m", input="hi", previous_response_id=alone.id)

    stored = client.responses.create(model="m", input="remember me")
    assert stored.conversation is not None
    session = stored.conversation.id
    unstored = client.responses.create(model="m", input="not this", previous_response_id=stored.id, store=False)
    assert llm.requests[-1]["messages"][1] == {"role": "user", "content": "remember me"}  # history was read
    assert unstored.conversation is None
    assert history(runtime, session).json()["turns"] == 1  # ...and nothing added to it


def test_conversation_names_the_session(client: openai.OpenAI, llm: FakeLLM, runtime: RuntimeProcess) -> None:
    client.responses.create(model="m", input="first", conversation="case-42")
    second = client.responses.create(model="m", input="second", conversation={"id": "case-42"})
    assert llm.requests[1]["messages"][1:3] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "Echo: first"},
    ]
    assert second.conversation is not None and second.conversation.id == "case-42"
    assert "case" not in second.id  # the caller's id is not folded into response ids
    assert history(runtime, "case-42").json()["turns"] == 2
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="x", conversation="case-42", previous_response_id=second.id)
    assert caught.value.param == "conversation"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"background": True}, "background"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"text": {"format": {"type": "json_object"}}}, "text"),
        ({"extra_body": {"frobnicate": 1}}, "frobnicate"),
    ],
)
def test_unhonoured_parameters_are_refused_naming_them(
    client: openai.OpenAI, llm: FakeLLM, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="hello", **params)
    assert caught.value.param == param
    assert caught.value.code == "unsupported_parameter"
    assert param in caught.value.message
    assert llm.request_count == 0


@pytest.mark.parametrize(
    "input_items",
    [
        [{"type": "function_call_output", "call_id": "c1", "output": "42"}],
        [{"role": "user", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]}],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        [],
    ],
)
def test_unsupported_input_is_400_naming_input(client: openai.OpenAI, llm: FakeLLM, input_items: list) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=input_items)
    assert caught.value.param == "input"
    assert llm.request_count == 0


def test_defaults_frameworks_send_explicitly_are_accepted(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="m", input="hello", tools=[], include=[], truncation="disabled", text={"format": {"type": "text"}}
    )
    assert response.output_text == "Echo: hello"


def test_caller_auth_and_the_revision_header(runtime: RuntimeProcess) -> None:
    wrong = openai.OpenAI(base_url=f"{runtime.url}/v1", api_key="wrong", max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError):
        wrong.responses.create(model="m", input="hello")
    missing = httpx.post(f"{runtime.url}/v1/responses", json={"input": "hello"})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    refused = httpx.post(f"{runtime.url}/v1/responses", headers=AUTH, json={"input": "hello", "top_p": 0.5})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "top_p"
    for answer in (missing, refused):
        assert answer.headers.get_list("x-agent-revision") == ["r1"]


def test_requests_are_counted_in_the_metrics(client: openai.OpenAI, runtime: RuntimeProcess) -> None:
    def count(code: str) -> float:
        text = httpx.get(f"{runtime.url}/metrics").text
        line = f'agent_requests_total{{agent="support-bot",code="{code}",revision="r1"}} '
        return next((float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)), 0.0)

    ok, bad = count("200"), count("400")
    client.responses.create(model="m", input="hello")
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="m", input="hello", top_p=0.5)
    assert (count("200"), count("400")) == (ok + 1, bad + 1)


async def test_an_agent_without_sessions_refuses_what_needs_them() -> None:
    async with runtime_client(rules_config()) as http:
        plain = await http.post("/v1/responses", json={"input": "hello"})
        assert plain.status_code == 200, plain.text
        body = plain.json()
        assert body["output"][0]["content"][0]["text"] == "Hello! How can I help you today?"
        assert body["conversation"] is None and "x-session-id" not in plain.headers
        for extra in ({"store": True}, {"conversation": "c1"}, {"previous_response_id": "resp_" + "0" * 48}):
            refused = await http.post("/v1/responses", json={"input": "hello", **extra})
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["param"] == next(iter(extra))


async def test_a_failing_model_is_an_http_error_before_the_stream_starts() -> None:
    with FakeLLM() as llm:
        llm.mode = "error"
        config = llm_config(llm)
        config["model"]["maxRetries"] = 0
        async with runtime_client(config) as http:
            for stream in (False, True):
                response = await http.post("/v1/responses", json={"input": "hello", "stream": stream})
                assert response.status_code == 502, response.text
                assert response.json()["error"]["code"] == "model_unavailable"


async def test_the_openapi_document_describes_the_endpoint() -> None:
    async with runtime_client(rules_config()) as http:
        schema = (await http.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/responses"]["post"]
    assert operation["security"] == [{"bearer": []}]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    request = schema["components"]["schemas"][ref]
    assert {"input", "instructions", "previous_response_id", "conversation", "store"} <= set(request["properties"])
    assert "tools" in request["description"]  # the refused parameters are named
    assert "text/event-stream" in operation["responses"]["200"]["content"]


def test_a_store_failure_mid_stream_ends_it_with_error_and_response_failed(
    llm: FakeLLM, tmp_path: Path, redis_server: Any
) -> None:
    # A Redis of this test's own (the shared one must stay up): stopped while the answer streams, so
    # remembering the exchange fails after the first deltas were sent and the status was 200.
    port = free_port()
    redis = subprocess.Popen(
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        config = llm_config(llm, state={"store": "redis", "redisURL": f"redis://127.0.0.1:{port}/0"})
        probe = redis_client.Redis(host="127.0.0.1", port=port)

        def up() -> bool:
            try:
                return bool(probe.ping())
            except redis_client.ConnectionError:
                return False

        wait_until(up, what="the test's redis-server")
        probe.close()
        runtime = RuntimeProcess(config, tmp_path).start()
        llm.stream_chunk_delay = 0.2
        try:
            with openai.OpenAI(base_url=f"{runtime.url}/v1", api_key="none", max_retries=0) as sdk:
                types = []
                for event in sdk.responses.create(model="m", input="one two three four five", stream=True):
                    types.append(event.type)
                    if event.type == "response.output_text.delta" and redis.poll() is None:
                        redis.terminate()
                        redis.wait(timeout=10)
                    if event.type == "error":
                        assert event.code == "state_unavailable"
                    if event.type == "response.failed":
                        assert event.response.status == "failed" and event.response.error is not None
        finally:
            runtime.stop()
    finally:
        if redis.poll() is None:
            redis.terminate()
            redis.wait(timeout=10)
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert "response.output_text.delta" in types
    assert types[-2:] == ["error", "response.failed"]
    assert "response.completed" not in types
