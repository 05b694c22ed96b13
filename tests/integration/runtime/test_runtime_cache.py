"""The answer cache (Agent spec.cache) and tool result cache (cacheSeconds), through the official openai
SDK against runtime processes on a real redis-server (issue 15, item 8). The fake LLM counts the calls
that reach it and the fake CRM the lookups, so a hit is seen as a call that did not happen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.crm import FakeCRM
from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import LOOKUP_TOOL, RuntimeProcess, crm_connector, llm_config

pytestmark = pytest.mark.integration

TTL = 120
HELLO = [{"role": "user", "content": "hello there my friend"}]  # the fake LLM answers "Echo: hello there my friend"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    """The files a StatePolicy with encryption gives the pods: the encryption key and the session key."""
    encryption, session = tmp_path / "encryption-key", tmp_path / "session-key"
    encryption.write_bytes(b"0123456789abcdef0123456789abcdef")
    session.write_bytes(b"hmac-key-of-the-state-policy")
    return {"encryptionKeyFile": str(encryption), "sessionKeyFile": str(session)}


def cached_config(
    llm: FakeLLM, url: str, keys: dict[str, str], *, revision: str = "r1", temperature: float = 0, **state: Any
) -> dict[str, Any]:
    config = llm_config(llm, cache={"ttlSeconds": TTL}, state={"store": "redis", "redisURL": url, **keys, **state})
    config["agent"]["revision"] = revision
    config["model"]["temperature"] = temperature
    return config


@pytest.fixture
def cached(redis_server, redis_db, fake_llm: FakeLLM, keys: dict[str, str], spawn_runtime) -> RuntimeProcess:
    return spawn_runtime(cached_config(fake_llm, redis_server.url, keys))


def sdk(runtime: RuntimeProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{runtime.url}/v1", api_key="unused", max_retries=0, timeout=30)


def chat(runtime: RuntimeProcess, **params: Any) -> tuple[Any, str | None]:
    """The completion and the X-Agent-Cache header it came with."""
    raw = sdk(runtime).chat.completions.with_raw_response.create(
        model="anything", messages=params.pop("messages", HELLO), **params
    )
    return raw.parse(), raw.headers.get("x-agent-cache")


def counter(runtime: RuntimeProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{runtime.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def answer_keys(db: redis.Redis) -> list[bytes]:
    return sorted(db.scan_iter(match="af:*:answer"))


def test_a_second_identical_request_is_answered_without_the_model(cached: RuntimeProcess, fake_llm: FakeLLM) -> None:
    first, first_cache = chat(cached)
    second, second_cache = chat(cached)
    assert fake_llm.request_count == 1
    assert (first_cache, second_cache) == ("miss", "hit")
    assert second.choices[0].message.content == first.choices[0].message.content == "Echo: hello there my friend"
    assert second.choices[0].finish_reason == "stop"
    assert second.usage is not None and second.usage.total_tokens == 0  # no model was asked
    assert first.usage is not None and first.usage.total_tokens > 0
    labels = {"agent": "support-bot", "revision": "r1"}
    assert counter(cached, "agent_cache_requests_total", result="hit", **labels) == 1
    assert counter(cached, "agent_cache_requests_total", result="miss", **labels) == 1
    # Other model parameters are another request.
    third, cache = chat(cached, max_tokens=3)
    assert cache == "miss" and third.choices[0].finish_reason == "length" and fake_llm.request_count == 2


def test_a_hit_is_streamed_from_the_cached_text(cached: RuntimeProcess, fake_llm: FakeLLM) -> None:
    client = sdk(cached)
    with client.chat.completions.with_streaming_response.create(
        model="anything", messages=HELLO, stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["x-agent-cache"] == "miss"
        streamed = list(response.parse())
    with client.chat.completions.with_streaming_response.create(
        model="anything", messages=HELLO, stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["x-agent-cache"] == "hit"
        replayed = list(response.parse())
    assert fake_llm.request_count == 1

    def text(chunks: list[Any]) -> str:
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert text(replayed) == text(streamed) == "Echo: hello there my friend"
    assert len([c for c in replayed if c.choices and c.choices[0].delta.content]) > 1
    assert [c.choices[0].finish_reason for c in replayed if c.choices][-1] == "stop"
    assert replayed[-1].usage is not None and replayed[-1].usage.total_tokens == 0
    # A streamed answer and a plain one are the same request: the plain one is a hit too.
    assert chat(cached)[1] == "hit" and fake_llm.request_count == 1


def test_responses_and_sessions_share_the_one_cache_and_a_hit_is_remembered(
    cached: RuntimeProcess, fake_llm: FakeLLM
) -> None:
    client = sdk(cached)
    one = client.responses.with_raw_response.create(model="anything", input="what are your opening hours?")
    two = client.responses.with_raw_response.create(model="anything", input="what are your opening hours?")
    assert (one.headers["x-agent-cache"], two.headers["x-agent-cache"]) == ("miss", "hit")
    assert two.parse().output_text == one.parse().output_text == "Echo: what are your opening hours?"
    assert fake_llm.request_count == 1
    with client.responses.stream(model="anything", input="what are your opening hours?") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Echo: what are your opening hours?"
    assert len(deltas) > 1 and fake_llm.request_count == 1
    # Each response started a session of its own; the cached answer is in the second's history.
    session = two.parse().conversation.id
    history = httpx.get(f"{cached.url}/v1/sessions/{session}", timeout=10).json()
    assert [m["content"] for m in history["messages"]] == [
        "what are your opening hours?",
        "Echo: what are your opening hours?",
    ]
    # The sessions API asks the same: a hit as well, appended to that session like any answer.
    posted = httpx.post(
        f"{cached.url}/v1/sessions/fresh/messages", json={"content": "what are your opening hours?"}, timeout=10
    )
    assert posted.headers["x-agent-cache"] == "hit" and posted.json()["reply"] == "Echo: what are your opening hours?"
    assert httpx.get(f"{cached.url}/v1/sessions/fresh", timeout=10).json()["turns"] == 1
    # That session's next turn carries its history: another request, which the model answers.
    again = httpx.post(
        f"{cached.url}/v1/sessions/fresh/messages", json={"content": "what are your opening hours?"}, timeout=10
    )
    assert again.headers["x-agent-cache"] == "miss" and fake_llm.request_count == 2


def test_requests_that_are_not_deterministic_are_never_cached(
    redis_server, redis_db, fake_llm: FakeLLM, keys: dict[str, str], spawn_runtime
) -> None:
    # The Agent's temperature is 0.2: without a caller temperature of 0 nothing is cached.
    warm = spawn_runtime(cached_config(fake_llm, redis_server.url, keys, temperature=0.2))
    assert [chat(warm)[1], chat(warm)[1]] == ["bypass", "bypass"]
    assert [chat(warm, temperature=0.7)[1], chat(warm, temperature=0.7)[1]] == ["bypass", "bypass"]
    assert fake_llm.request_count == 4 and answer_keys(redis_db) == []
    assert counter(warm, "agent_cache_requests_total", result="bypass") == 4
    # A caller asking for temperature 0 makes the request deterministic.
    assert [chat(warm, temperature=0)[1], chat(warm, temperature=0)[1]] == ["miss", "hit"]
    assert fake_llm.request_count == 5


def test_a_new_revision_never_serves_an_old_revisions_answer(
    redis_server, redis_db, fake_llm: FakeLLM, keys: dict[str, str], spawn_runtime
) -> None:
    old = spawn_runtime(cached_config(fake_llm, redis_server.url, keys, revision="r1"), "r1")
    assert chat(old)[1] == "miss"
    old.stop()
    new = spawn_runtime(cached_config(fake_llm, redis_server.url, keys, revision="r2"), "r2")
    assert chat(new)[1] == "miss" and fake_llm.request_count == 2
    assert chat(new)[1] == "hit" and len(answer_keys(redis_db)) == 2
    assert counter(new, "agent_cache_requests_total", revision="r2", result="hit") == 1
    new.stop()
    # The old revision's answer is still in Redis, for its own pods only (a rollback finds it).
    back = spawn_runtime(cached_config(fake_llm, redis_server.url, keys, revision="r1"), "r1-again")
    assert chat(back)[1] == "hit" and fake_llm.request_count == 2


def test_the_cached_answer_is_encrypted_in_redis_and_expires(cached: RuntimeProcess, redis_db: redis.Redis) -> None:
    chat(cached, messages=[{"role": "user", "content": "the launch code is swordfish"}])
    (key,) = answer_keys(redis_db)
    assert key.startswith(b"af:{support/support-bot/k") and b"swordfish" not in key
    raw = redis_db.get(key)
    assert raw is not None and b"swordfish" not in raw and b"Echo" not in raw and b"launch" not in raw
    assert 0 < redis_db.ttl(key) <= TTL
    # Reading it does not extend it: the TTL is counted from when it was stored.
    redis_db.expire(key, 30)
    assert chat(cached, messages=[{"role": "user", "content": "the launch code is swordfish"}])[1] == "hit"
    assert 0 < redis_db.ttl(key) <= 30


def test_personal_data_is_never_cached(
    redis_server, redis_db, fake_llm: FakeLLM, keys: dict[str, str], spawn_runtime
) -> None:
    runtime = spawn_runtime(cached_config(fake_llm, redis_server.url, keys, redaction=["email"]))
    ask = [{"role": "user", "content": "write a greeting for ada@example.com"}]
    assert [chat(runtime, messages=ask)[1], chat(runtime, messages=ask)[1]] == ["bypass", "bypass"]
    assert fake_llm.request_count == 2 and answer_keys(redis_db) == []


def test_a_get_tool_with_cache_seconds_reaches_the_crm_once(
    fake_llm: FakeLLM, fake_crm: FakeCRM, spawn_runtime
) -> None:
    fake_llm.respond_with_tool_call(r"customer (?P<email>\S+@\S+)", "lookup_customer", {"email": "{email}"})
    connector = crm_connector(fake_crm, tools=[{**LOOKUP_TOOL, "cacheSeconds": 60}])
    runtime = spawn_runtime(llm_config(fake_llm, connectors=[connector]))
    ask = [{"role": "user", "content": "what tier is customer ada@example.com?"}]
    first, cache = chat(runtime, messages=ask)
    second, _ = chat(runtime, messages=ask)
    assert cache is None  # no spec.cache: no answer cache header
    assert first.choices[0].message.content == second.choices[0].message.content
    assert '"tier": "gold"' in (second.choices[0].message.content or "")
    assert fake_crm.hits["/customers"] == 1 and fake_llm.request_count == 4  # the model ran both tool loops
    assert counter(runtime, "agent_tool_cache_requests_total", tool="lookup_customer", result="hit") == 1
    assert counter(runtime, "agent_tool_cache_requests_total", tool="lookup_customer", result="miss") == 1
    assert counter(runtime, "agent_tool_calls_total", tool="lookup_customer", outcome="success") == 1
    # Other arguments are another call.
    chat(runtime, messages=[{"role": "user", "content": "what tier is customer bob@example.com?"}])
    assert fake_crm.hits["/customers"] == 2


def test_an_answer_that_called_a_tool_is_not_cached(
    redis_server, redis_db, fake_llm: FakeLLM, fake_crm: FakeCRM, keys: dict[str, str], spawn_runtime
) -> None:
    fake_llm.respond_with_tool_call(r"customer (?P<email>\S+@\S+)", "lookup_customer", {"email": "{email}"})
    config = cached_config(fake_llm, redis_server.url, keys)
    config["connectors"] = [crm_connector(fake_crm)]
    runtime = spawn_runtime(config)
    ask = [{"role": "user", "content": "what tier is customer ada@example.com?"}]
    assert [chat(runtime, messages=ask)[1], chat(runtime, messages=ask)[1]] == ["miss", "miss"]
    assert fake_crm.hits["/customers"] == 2 and answer_keys(redis_db) == []
