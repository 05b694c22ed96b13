"""The runtime as a real process: the openai client, graceful shutdown, config errors."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import llm_config, rules_config, runtime_command

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
