"""The HTTP API in-process: perception errors, caller auth, streaming, model retries, metrics."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import llm_config, rules_config, runtime_client

USER = {"role": "user", "content": "hello there"}


def sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def assert_error(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    if code:
        assert body["error"]["code"] == code


async def test_chat_completion_shape_and_request_id() -> None:
    async with runtime_client(rules_config()) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "x", "messages": [USER]}, headers={"X-Request-ID": "req-123"}
        )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello! How can I help you today?"}
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


async def test_rules_stream_is_sse_ending_with_done() -> None:
    async with runtime_client(rules_config()) as client:
        response = await client.post(
            "/v1/chat/completions", json={"messages": [USER], "stream": True, "stream_options": {"include_usage": True}}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello! How can I help you today?"
    assert chunks[-1]["usage"]["completion_tokens"] > 0


async def test_llm_stream_is_forwarded_and_ends_with_done(fake_llm: FakeLLM) -> None:
    async with runtime_client(llm_config(fake_llm)) as client:
        response = await client.post("/v1/chat/completions", json={"messages": [USER], "stream": True})
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == "Echo: hello there"
    assert fake_llm.requests[0]["stream"] is True
    system = {"role": "system", "content": "You are the support assistant of ACME."}
    assert fake_llm.requests[0]["messages"][0] == system


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "invalid_json"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, 400, "empty_body"),
        ({"content": b"[1, 2]", "headers": {"content-type": "application/json"}}, 400, "invalid_json"),
        ({"content": b"hi", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"json": {"messages": []}}, 400, "invalid_messages"),
        ({"json": {"messages": [{"role": "user", "content": "x" * 600}]}}, 400, "message_too_long"),
        ({"json": {"messages": [{"role": "tool", "content": "x"}]}}, 400, "invalid_role"),
        ({"json": {"messages": [USER], "pad": "x" * 5000}}, 413, "request_too_large"),
    ],
)
async def test_bad_and_oversized_input_is_a_json_4xx(kwargs: dict, status: int, code: str) -> None:
    config = rules_config(server={"maxRequestBytes": 4096, "maxMessageChars": 500})
    async with runtime_client(config) as client:
        assert_error(await client.post("/v1/chat/completions", **kwargs), status, code)


async def test_chunked_oversized_body_is_refused_without_content_length() -> None:
    async def body():
        for _ in range(10):
            yield b"x" * 1000

    async with runtime_client(rules_config(server={"maxRequestBytes": 4096})) as client:
        response = await client.post(
            "/v1/chat/completions", content=body(), headers={"content-type": "application/json"}
        )
    assert_error(response, 413, "request_too_large")


async def test_unknown_route_and_method_are_json_errors() -> None:
    async with runtime_client(rules_config()) as client:
        assert_error(await client.get("/v1/nothing"), 404, "not_found")
        assert_error(await client.get("/v1/chat/completions"), 405, "method_not_allowed")


def write_key(directory: Path, name: str, value: str) -> None:
    # Write-then-rename, as the kubelet's atomic writer does.
    tmp = directory / f".{name}.tmp"
    tmp.write_text(value + "\n")
    os.replace(tmp, directory / name)


async def test_caller_auth_and_key_rotation(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    write_key(keys, "key", "first-key")
    async with runtime_client(rules_config(access={"apiKeysDir": str(keys)})) as client:
        url, body = "/v1/chat/completions", {"messages": [USER]}
        assert_error(await client.post(url, json=body), 401, "missing_api_key")
        assert_error(
            await client.post(url, json=body, headers={"Authorization": "Bearer nope"}), 401, "invalid_api_key"
        )
        assert_error(await client.post(url, json=body, headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401)
        ok = await client.post(url, json=body, headers={"Authorization": "Bearer first-key"})
        assert ok.status_code == 200
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(probe)).status_code == 200
        assert "nope" not in (await client.get("/metrics")).text

        write_key(keys, "key", "second-key")
        for _ in range(100):  # the directory is re-checked at most once per second
            response = await client.post(url, json=body, headers={"Authorization": "Bearer second-key"})
            if response.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert response.status_code == 200
        assert_error(await client.post(url, json=body, headers={"Authorization": "Bearer first-key"}), 401)


async def test_llm_429_is_retried_until_it_succeeds(fake_llm: FakeLLM) -> None:
    fake_llm.fail_with_429(times=2, retry_after="0")
    async with runtime_client(llm_config(fake_llm)) as client:
        response = await client.post("/v1/chat/completions", json={"messages": [USER]})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hello there"
    assert fake_llm.request_count == 3


async def test_llm_429_beyond_retries_is_a_clear_upstream_error(fake_llm: FakeLLM) -> None:
    fake_llm.fail_with_429(times=10, retry_after="0")
    config = llm_config(fake_llm)
    config["model"]["maxRetries"] = 1
    async with runtime_client(config) as client:
        response = await client.post("/v1/chat/completions", json={"messages": [USER]})
    assert_error(response, 502, "model_rate_limited")
    assert fake_llm.request_count == 2


async def test_llm_500_is_502_and_a_hanging_llm_is_504(fake_llm: FakeLLM) -> None:
    config = llm_config(fake_llm)
    config["model"].update(maxRetries=0, timeoutSeconds=0.3)
    async with runtime_client(config) as client:
        fake_llm.mode = "error"
        assert_error(await client.post("/v1/chat/completions", json={"messages": [USER]}), 502, "model_unavailable")
        fake_llm.mode = "hang"
        assert_error(await client.post("/v1/chat/completions", json={"messages": [USER]}), 504, "model_timeout")
        stream = await client.post("/v1/chat/completions", json={"messages": [USER], "stream": True})
        assert_error(stream, 504, "model_timeout")


async def test_llm_api_key_is_sent_from_its_file(tmp_path: Path) -> None:
    key_file = tmp_path / "apiKey"
    key_file.write_text("llm-secret\n")
    with FakeLLM(api_key="llm-secret") as llm:
        config = llm_config(llm)  # type: ignore[arg-type]
        config["model"]["apiKeyFile"] = str(key_file)
        async with runtime_client(config) as client:
            response = await client.post("/v1/chat/completions", json={"messages": [USER]})
    assert response.status_code == 200


async def test_metrics_have_the_documented_names(fake_llm: FakeLLM) -> None:
    async with runtime_client(llm_config(fake_llm)) as client:
        await client.post("/v1/chat/completions", json={"messages": [USER]})
        await client.post("/v1/chat/completions", json={"messages": []})
        text = (await client.get("/metrics")).text
    assert 'agent_requests_total{agent="support-bot",code="200",revision="r1"} 1.0' in text
    assert 'agent_requests_total{agent="support-bot",code="400",revision="r1"} 1.0' in text
    assert 'agent_request_duration_seconds_count{agent="support-bot",revision="r1"} 2.0' in text
    assert 'agent_inflight_requests{agent="support-bot",revision="r1"} 0.0' in text
    assert 'gen_ai_client_token_usage_count{gen_ai_token_type="input"} 1.0' in text
    assert 'gen_ai_client_token_usage_count{gen_ai_token_type="output"} 1.0' in text
    assert "gen_ai_client_operation_duration_seconds_count 1.0" in text
    assert "# TYPE agent_tool_calls_total counter" in text
    assert "# TYPE agent_tool_call_duration_seconds histogram" in text


async def test_openapi_document_describes_the_api() -> None:
    async with runtime_client(rules_config()) as client:
        schema = (await client.get("/openapi.json")).json()
    assert {
        "/v1/chat/completions",
        "/v1/sessions/{session_id}/messages",
        "/v1/sessions/{session_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(schema["paths"])
    body = schema["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "messages" in schema["components"]["schemas"][ref]["properties"]


async def test_stateless_agent_has_no_history_and_memory_sessions_work() -> None:
    async with runtime_client(rules_config()) as client:
        await client.post("/v1/sessions/s1/messages", json={"content": "hello"})
        assert_error(await client.get("/v1/sessions/s1"), 404, "session_not_found")
    async with runtime_client(rules_config(state={"store": "memory"})) as client:
        reply = await client.post("/v1/sessions/s1/messages", json={"content": "hello"})
        assert reply.json()["reply"] == "Hello! How can I help you today?"
        assert set(reply.json()) == {"sessionId", "reply", "toolCalls", "usage"}
        history = (await client.get("/v1/sessions/s1")).json()
        assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
        assert (await client.delete("/v1/sessions/s1")).status_code == 204
        assert_error(await client.get("/v1/sessions/s1"), 404)


async def test_every_answer_names_the_revision_errors_and_probes_included(tmp_path: Path, fake_llm: FakeLLM) -> None:
    # Telling canary from stable by this header must not lose a bad canary's 5xx (API.md: every response).
    keys = tmp_path / "keys"
    keys.mkdir()
    write_key(keys, "key", "k")
    config = llm_config(fake_llm, access={"apiKeysDir": str(keys)})
    config["model"]["maxRetries"] = 0
    auth = {"Authorization": "Bearer k"}
    async with runtime_client(config) as client:
        ok = await client.post("/v1/chat/completions", json={"messages": [USER]}, headers=auth)
        fake_llm.mode = "error"
        answers = {
            "200": ok,
            "401": await client.post("/v1/chat/completions", json={"messages": [USER]}),
            "400": await client.post("/v1/chat/completions", json={"messages": "nope"}, headers=auth),
            "404": await client.get("/v1/nothing", headers=auth),
            "502": await client.post("/v1/chat/completions", json={"messages": [USER]}, headers=auth),
            "healthz": await client.get("/healthz"),
        }
    assert answers["502"].status_code == 502 and answers["401"].status_code == 401
    for what, response in answers.items():
        assert response.headers.get_list("x-agent-revision") == ["r1"], (what, response.headers)
