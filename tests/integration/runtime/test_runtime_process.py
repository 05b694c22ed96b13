"""The runtime as a real process: the openai client, graceful shutdown, config errors, its logs."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes.crm import FakeCRM
from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import crm_connector, llm_config, rules_config, runtime_command

pytestmark = pytest.mark.integration


def test_the_openai_client_talks_to_the_runtime(tmp_path: Path, spawn_runtime) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "key").write_text("caller-key\n")
    runtime = spawn_runtime(rules_config(access={"apiKeysDir": str(keys)}, state={"store": "memory"}))
    client = openai.OpenAI(base_url=f"{runtime.url}/v1", api_key="caller-key", max_retries=0)
    completion = client.chat.completions.create(model="anything", messages=[{"role": "user", "content": "hello"}])
    assert completion.choices[0].message.content == "Hello! How can I help you today?"
    assert completion.usage is not None and completion.usage.total_tokens > 0

    stream = client.chat.completions.create(
        model="anything", stream=True, user="u-1", messages=[{"role": "user", "content": "hello"}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello! How can I help you today?"
    assert (
        httpx.get(f"{runtime.url}/v1/sessions/u-1", headers={"Authorization": "Bearer caller-key"}).json()["turns"] == 1
    )

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{runtime.url}/v1", api_key="wrong", max_retries=0).chat.completions.create(
            model="x", messages=[{"role": "user", "content": "hello"}]
        )


def test_sigterm_mid_stream_finishes_the_stream(fake_llm: FakeLLM, spawn_runtime) -> None:
    fake_llm.stream_chunk_delay = 0.2
    runtime = spawn_runtime(llm_config(fake_llm))
    words = "one two three four five six seven eight"
    events: list[str] = []
    with httpx.stream(
        "POST",
        f"{runtime.url}/v1/chat/completions",
        timeout=30,
        json={"stream": True, "messages": [{"role": "user", "content": words}]},
    ) as response:
        assert response.status_code == 200
        signalled = False
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(line[6:])
            if (
                not signalled
                and events[-1] != "[DONE]"
                and json.loads(events[-1])["choices"][0]["delta"].get("content")
            ):
                runtime.process.send_signal(signal.SIGTERM)  # mid-stream: content has started flowing
                signalled = True
    assert signalled
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == f"Echo: {words}"
    # uvicorn re-raises the captured SIGTERM once it has drained, as Kubernetes expects.
    assert runtime.process.wait(timeout=30) in (0, -signal.SIGTERM)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{runtime.url}/healthz", timeout=2)


def test_malformed_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = rules_config()
    config["model"]["temperature"] = 7
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = subprocess.run([*runtime_command(), "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "model.temperature" in result.stderr

    path.write_text("{ not json")
    result = subprocess.run([*runtime_command(), "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_logs_are_json_lines_with_request_ids(spawn_runtime) -> None:
    runtime = spawn_runtime(rules_config())
    httpx.post(
        f"{runtime.url}/v1/chat/completions",
        headers={"X-Request-ID": "trace-42"},
        timeout=10,
        json={"messages": [{"role": "user", "content": "hello"}]},
    )
    runtime.stop()
    lines = [json.loads(line) for line in runtime.logs().splitlines() if line.startswith("{")]
    access = [entry for entry in lines if entry.get("msg") == "request"]
    assert access and access[0]["request_id"] == "trace-42" and access[0]["status"] == 200
    assert all(entry["agent"] == "support-bot" for entry in lines)


def test_logs_redact_content_but_keep_ids_and_say_why_a_tool_failed(fake_crm: FakeCRM, spawn_runtime) -> None:
    fake_crm.mode = "down"  # every crm call answers 503
    with FakeCRM() as orders:  # up, but it has no /orders route: 404 with its own error body
        find_order = {
            "name": "find_order",
            "method": "GET",
            "path": "/orders/{email}",
            "parameters": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]},
        }
        config = rules_config(
            connectors=[crm_connector(fake_crm, retries=0), crm_connector(orders, name="orders", tools=[find_order])],
            state={"store": "memory", "redaction": ["email", "phone"]},
        )
        config["model"]["rules"].insert(
            0, {"pattern": r"order of (?P<email>\S+@\S+)", "tool": "find_order", "arguments": {"email": "{email}"}}
        )
        runtime = spawn_runtime(config)
        session = f"{runtime.url}/v1/sessions/jane.doe@example.com/messages"
        customer = httpx.post(
            session,
            headers={"X-Request-ID": "1234567890"},
            json={"content": "please find customer ada@example.com"},
            timeout=30,
        )
        order = httpx.post(
            session, headers={"X-Request-ID": "5551234567"}, json={"content": "order of ada@example.com"}, timeout=30
        )
        generated = httpx.post(session, json={"content": "hello"}, timeout=30)
        runtime.stop()
    assert [customer.status_code, order.status_code, generated.status_code] == [200, 200, 200]
    assert customer.json()["toolCalls"][0]["outcome"] == "http_error"
    # The model (here the rules reasoner) still reads what the system said.
    assert order.json()["reply"].endswith('orders answered HTTP 404: {"error": "not found"}')

    text = runtime.logs()
    raw_lines = [line for line in text.splitlines() if line.strip()]
    lines = [json.loads(line) for line in raw_lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= set(entry) for entry in lines)
    assert any(entry["logger"].startswith("uvicorn") for entry in lines)  # uvicorn's lines are there...
    assert not any("color_message" in entry for entry in lines)  # ...in the one shape, without colour codes
    assert "\x1b[" not in text and "\\u001b" not in text

    access = {entry["request_id"]: entry for entry in lines if entry["msg"] == "request"}
    assert access["1234567890"]["path"] == "/v1/sessions/[REDACTED:email]/messages"
    assert access["5551234567"]["status"] == 200
    assert generated.headers["X-Request-ID"] in access  # a generated id is logged as it was answered

    failed = {entry["tool"]: entry for entry in lines if entry["msg"] == "tool call failed"}
    crm_failure = {key: failed["lookup_customer"].get(key) for key in ("connector", "outcome", "reason", "request_id")}
    assert crm_failure == {
        "connector": "crm",
        "outcome": "http_error",
        "reason": "crm answered HTTP 503",
        "request_id": "1234567890",
    }
    assert (failed["find_order"]["reason"], failed["find_order"]["request_id"]) == (
        "orders answered HTTP 404",
        "5551234567",
    )
    # The reason is the runtime's words: neither the argument nor the system's echo of it.
    assert not any("ada" in json.dumps(entry) or "not found" in json.dumps(entry) for entry in failed.values())
    assert "jane.doe@example.com" not in text and "ada@example.com" not in text


def test_a_failed_model_call_logs_its_reason(fake_llm: FakeLLM, spawn_runtime) -> None:
    config = llm_config(fake_llm)
    config["model"]["maxRetries"] = 0
    runtime = spawn_runtime(config)
    fake_llm.mode = "error"  # every call answers 500
    for stream in (False, True):
        response = httpx.post(
            f"{runtime.url}/v1/chat/completions",
            headers={"X-Request-ID": f"model-down-{stream}"},
            json={"stream": stream, "messages": [{"role": "user", "content": "hello"}]},
            timeout=30,
        )
        assert response.status_code == 502
    runtime.stop()
    lines = [json.loads(line) for line in runtime.logs().splitlines() if line.strip()]
    failures = {entry["request_id"]: entry for entry in lines if entry["msg"] == "model failed the request"}
    assert set(failures) == {"model-down-False", "model-down-True"}
    for entry in failures.values():
        assert (entry["code"], entry["status"]) == ("model_unavailable", 502)
        assert entry["reason"] == "the model endpoint answered HTTP 500"
