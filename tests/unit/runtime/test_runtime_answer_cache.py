"""The answer cache (spec.cache) and the tool result cache (cacheSeconds): key derivation, what is and
is not cached, expiry, encryption, metrics. Fake reasoner, fake clock, in-memory store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from agentfleet_runtime.agent import Agent
from agentfleet_runtime.config import ConnectorConfig
from agentfleet_runtime.memory.answer_cache import AnswerCache, answer_key
from agentfleet_runtime.memory.base import SessionMemory, StoreUnavailable
from agentfleet_runtime.memory.crypto import RecordCipher
from agentfleet_runtime.memory.memory_store import InMemoryBackend
from agentfleet_runtime.memory.redaction import Redactor
from agentfleet_runtime.metrics import RuntimeMetrics
from agentfleet_runtime.perception import Message
from agentfleet_runtime.reasoning.base import ReasoningResult, StreamEvent, Usage, chunk_text
from agentfleet_runtime.request_params import ModelParams
from agentfleet_runtime.tools.tool_cache import MISSING, ToolResultCache
from agentfleet_runtime.tools.toolbox import ToolBox, ToolCallRecord

from tests.fakes.clock import FakeClock

SYSTEM = "You are the support assistant of ACME; call +44 20 7946 0958 for help."
REQUEST = {"conversation": [{"role": "user", "content": "hello"}], "params": {"temperature": 0}}


def key(request: dict[str, Any] = REQUEST, *, revision: str = "r1", **kwargs: Any) -> str | None:
    kwargs.setdefault("redactor", Redactor([]))
    return answer_key("support", "bot", revision, request, **kwargs)


# Key derivation ---------------------------------------------------------------------------------------


def test_the_same_request_gets_the_same_key_and_the_key_hides_it() -> None:
    first = key(secret=b"hmac")
    assert first == key(secret=b"hmac")
    assert first is not None and first.startswith("af:{support/bot/k") and first.endswith("}:answer")
    assert "hello" not in first
    # Key order inside the request does not matter: canonical JSON.
    assert key({"params": {"temperature": 0}, "conversation": REQUEST["conversation"]}, secret=b"hmac") == first


def test_a_new_revision_gets_other_keys() -> None:
    assert key(revision="r1") != key(revision="r2")
    assert key(revision="r1", secret=b"s") != key(revision="r2", secret=b"s")


@pytest.mark.parametrize(
    "other",
    [
        {"conversation": [{"role": "user", "content": "hello!"}], "params": {"temperature": 0}},
        {"conversation": [{"role": "user", "content": "hello"}], "params": {"temperature": 0, "max_tokens": 5}},
        {
            "conversation": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "hello"},
            ],
            "params": {"temperature": 0},
        },
    ],
    ids=["message", "parameter", "history"],
)
def test_any_difference_in_the_request_is_another_key(other: dict[str, Any]) -> None:
    assert key(other) != key()


def test_the_session_key_makes_the_digest_an_hmac() -> None:
    plain, keyed = key(), key(secret=b"one")
    assert plain is not None and keyed is not None
    assert "/k" not in plain and keyed != key(secret=b"two")


def test_the_key_is_taken_after_redaction_and_a_request_it_changes_is_not_keyed() -> None:
    personal = {"conversation": [{"role": "user", "content": "I am ada@example.com"}], "params": {"temperature": 0}}
    # With the StatePolicy's redaction the request's redacted form could be another caller's: no key.
    assert key(personal, redactor=Redactor(["email"])) is None
    # A request redaction leaves alone is keyed as it is: the same key with or without the patterns.
    assert key(redactor=Redactor(["email", "phone"])) == key()
    # Without redaction configured nothing is personal data to the runtime.
    assert key(personal) is not None


# The Agent's use of it ----------------------------------------------------------------------------------


class CountingReasoner:
    """Answers "answer <n>" for its n-th call, so a cached answer tells itself apart."""

    def __init__(self, *, finish: str = "stop", tools: bool = False, reply: str | None = None) -> None:
        self.calls = 0
        self.finish, self.tools, self.reply = finish, tools, reply
        self.conversations: list[list[dict[str, Any]]] = []

    async def answer(
        self, conversation: list[dict[str, Any]], tools: Any, params: Any = None, deadline: Any = None
    ) -> ReasoningResult:
        self.calls += 1
        self.conversations.append(list(conversation))
        records = [ToolCallRecord("lookup_customer", {"email": "x"}, "success")] if self.tools else []
        reply = f"answer {self.calls}" if self.reply is None else self.reply
        return ReasoningResult(reply, records, Usage(10, 3), self.finish)

    async def stream(
        self, conversation: list[dict[str, Any]], tools: Any, params: Any = None, deadline: Any = None
    ) -> AsyncIterator[StreamEvent]:
        result = await self.answer(conversation, tools, params, deadline)
        for chunk in chunk_text(result.reply):
            yield chunk
        yield result

    async def aclose(self) -> None:
        return None


AGENT_DEFAULTS = ModelParams(temperature=0)


def build(
    reasoner: CountingReasoner | None = None,
    *,
    defaults: ModelParams = AGENT_DEFAULTS,
    clock: FakeClock | None = None,
    redaction: list[str] | None = None,
    cipher: RecordCipher | None = None,
    backend: Any = None,
    metrics: RuntimeMetrics | None = None,
) -> tuple[Agent, CountingReasoner, Any]:
    reasoner = reasoner or CountingReasoner()
    backend = backend or InMemoryBackend(ttl_seconds=3600, max_turns=50, clock=clock or FakeClock())
    redactor = Redactor(redaction or [])
    memory = SessionMemory(backend, namespace="support", agent="bot", redactor=redactor, cipher=cipher)
    cache = AnswerCache(
        backend,
        namespace="support",
        agent="bot",
        revision="r1",
        ttl_seconds=60,
        redactor=redactor,
        cipher=cipher,
        key_secret=b"hmac",
        metrics=metrics,
    )
    agent = Agent(
        system_prompt=SYSTEM,
        reasoner=reasoner,
        tools=ToolBox([], httpx.AsyncClient()),
        memory=memory,
        cache=cache,
        default_params=defaults,
    )
    return agent, reasoner, backend


def said(text: str) -> list[Message]:
    return [Message("user", text)]


async def ask(agent: Agent, text: str = "hello", session: str | None = None, **params: Any) -> tuple[str, Any]:
    turn = await agent.prepare(session, said(text))
    result = await agent.reason(turn, replace(AGENT_DEFAULTS, **params) if params else None)
    return result.reply, turn.cache


async def test_a_second_identical_request_is_answered_from_the_cache() -> None:
    agent, reasoner, _ = build()
    assert await ask(agent) == ("answer 1", "miss")
    turn = await agent.prepare(None, said("hello"))
    result = await agent.reason(turn)
    assert (result.reply, turn.cache, reasoner.calls) == ("answer 1", "hit", 1)
    assert result.usage.total_tokens == 0 and result.tool_calls == [] and result.finish_reason == "stop"
    # The Agent's system prompt is in the revision, not the key: a phone number in it does not matter.
    assert await ask(agent, "something else") == ("answer 2", "miss")


async def test_only_temperature_0_is_cached() -> None:
    agent, reasoner, _ = build(defaults=ModelParams(temperature=0.7))
    assert [await ask(agent), await ask(agent)] == [("answer 1", "bypass"), ("answer 2", "bypass")]
    # The caller may ask for 0: then the request is deterministic and cached.
    assert [await ask(agent, temperature=0), await ask(agent, temperature=0)] == [
        ("answer 3", "miss"),
        ("answer 3", "hit"),
    ]
    assert reasoner.calls == 3


async def test_other_parameters_are_other_requests() -> None:
    agent, reasoner, _ = build()
    await ask(agent)
    assert await ask(agent, max_tokens=5) == ("answer 2", "miss")
    assert await ask(agent, max_tokens=5) == ("answer 2", "hit")
    assert await ask(agent, seed=1) == ("answer 3", "miss")
    assert reasoner.calls == 3


@pytest.mark.parametrize(
    "reasoner",
    [CountingReasoner(tools=True), CountingReasoner(finish="content_filter"), CountingReasoner(reply="")],
    ids=["tool-called", "content-filter", "empty"],
)
async def test_answers_that_may_differ_next_time_are_not_kept(reasoner: CountingReasoner) -> None:
    agent, _, _ = build(reasoner)
    await ask(agent)
    assert (await ask(agent))[1] == "miss"
    assert reasoner.calls == 2


async def test_an_answer_cut_at_max_tokens_is_kept_with_its_finish_reason() -> None:
    agent, _, _ = build(CountingReasoner(finish="length"))
    await ask(agent)
    turn = await agent.prepare(None, said("hello"))
    assert (await agent.reason(turn)).finish_reason == "length" and turn.cache == "hit"


async def test_a_cached_answer_is_remembered_in_the_session_and_the_next_turn_is_another_request() -> None:
    agent, reasoner, _ = build()
    await ask(agent)  # no session: "hello" -> answer 1 cached
    assert await ask(agent, session="s1") == ("answer 1", "hit")
    history = await agent.history("s1")
    assert [(t.messages[0]["content"], t.reply) for t in history] == [("hello", "answer 1")]
    # Its history makes the session's next "hello" a different request than a first "hello".
    assert await ask(agent, session="s1") == ("answer 2", "miss")
    assert reasoner.conversations[-1][1:] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "hello"},
    ]


async def test_a_hit_streams_the_cached_text_in_chunks() -> None:
    agent, reasoner, _ = build(CountingReasoner(reply="a somewhat longer answer that takes a few chunks"))
    first = await agent.prepare(None, said("hello"))
    streamed = [event async for event in agent.reason_stream(first)]
    assert first.cache == "miss"
    again = await agent.prepare(None, said("hello"))
    cached = [event async for event in agent.reason_stream(again)]
    assert again.cache == "hit" and reasoner.calls == 1
    assert [e for e in cached if isinstance(e, str)] == [e for e in streamed if isinstance(e, str)]
    assert len([e for e in cached if isinstance(e, str)]) > 1
    assert isinstance(cached[-1], ReasoningResult) and cached[-1].usage.total_tokens == 0


async def test_personal_data_in_the_request_or_the_answer_is_never_cached() -> None:
    agent, _, backend = build(redaction=["email"])
    assert await ask(agent, "I am ada@example.com") == ("answer 1", "bypass")
    assert await ask(agent, "I am ada@example.com") == ("answer 2", "bypass")
    leaky, _, backend = build(CountingReasoner(reply="write to ada@example.com"), redaction=["email"])
    assert (await ask(leaky))[1] == "miss"
    assert (await ask(leaky))[1] == "miss"
    assert backend._values == {}


async def test_the_value_is_encrypted_and_bound_to_its_key() -> None:
    agent, reasoner, backend = build(CountingReasoner(reply="the launch code is swordfish"), cipher=RecordCipher(b"k"))
    await ask(agent)
    ((stored_key, (value, _)),) = backend._values.items()
    assert b"swordfish" not in value and b"launch" not in value
    assert (await ask(agent))[1] == "hit"
    # Copied under another request's key it does not decrypt: a miss, not a wrong answer.
    other = agent.cache.key({"conversation": [{"role": "user", "content": "hi"}], "params": {"temperature": 0}})
    backend._values[other] = (value, backend._values[stored_key][1])
    assert (await ask(agent, "hi"))[1] == "miss" and reasoner.calls == 2


async def test_a_cached_answer_expires_after_ttl_seconds_however_often_it_is_read() -> None:
    clock = FakeClock()
    agent, _, _ = build(clock=clock)
    await ask(agent)
    clock.advance(40)
    assert (await ask(agent))[1] == "hit"
    clock.advance(20)  # 60 s after it was stored, although it was read 20 s ago
    assert await ask(agent) == ("answer 2", "miss")


class DownStore(InMemoryBackend):
    async def get_value(self, key: str) -> bytes | None:
        raise StoreUnavailable("redis: ConnectionError")

    async def set_value(self, key: str, value: bytes, ttl_seconds: int) -> None:
        raise StoreUnavailable("redis: ConnectionError")


async def test_a_store_that_fails_is_a_miss_not_an_error() -> None:
    agent, _, _ = build(backend=DownStore(ttl_seconds=10, max_turns=3))
    assert await ask(agent) == ("answer 1", "miss")
    assert await ask(agent) == ("answer 2", "miss")


async def test_hits_misses_and_bypasses_are_counted() -> None:
    metrics = RuntimeMetrics("bot", "r1")
    agent, _, _ = build(metrics=metrics)
    await ask(agent)
    await ask(agent)
    await ask(agent, temperature=0.5)

    def count(result: str) -> float | None:
        labels = {"agent": "bot", "revision": "r1", "result": result}
        return metrics.registry.get_sample_value("agent_cache_requests_total", labels)

    assert (count("hit"), count("miss"), count("bypass")) == (1, 1, 1)


def test_an_agent_with_a_cache_needs_its_defaults() -> None:
    agent, reasoner, _ = build()
    with pytest.raises(ValueError, match="default parameters"):
        Agent(system_prompt="", reasoner=reasoner, tools=agent.tools, memory=None, cache=agent.cache)


async def test_the_memory_store_keeps_a_bounded_number_of_answers() -> None:
    clock = FakeClock()
    backend = InMemoryBackend(ttl_seconds=10, max_turns=3, clock=clock, max_values=3)
    for i in range(5):
        await backend.set_value(f"k{i}", b"v", 60)
        clock.advance(1)
    assert list(backend._values) == ["k2", "k3", "k4"]
    clock.advance(57)  # k2 was stored at t+2: expired now, k3 and k4 not yet
    await backend.set_value("k5", b"v", 60)
    assert list(backend._values) == ["k3", "k4", "k5"]
    assert await backend.get_value("k2") is None and await backend.get_value("k5") == b"v"


# The tool result cache (cacheSeconds) -------------------------------------------------------------------


def crm(calls: list[httpx.Request], *, cache_seconds: int | None = 30, status: int = 200) -> ToolBox:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        email = request.url.params.get("email", "")
        return httpx.Response(status, json={"email": email, "tier": "gold"})

    tool: dict[str, Any] = {
        "name": "lookup_customer",
        "method": "GET",
        "path": "/customers",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
    }
    if cache_seconds is not None:
        tool["cacheSeconds"] = cache_seconds
    config = ConnectorConfig.model_validate(
        {"name": "crm", "type": "http", "endpoint": "http://crm.test", "retries": 0, "tools": [tool]}
    )
    return ToolBox([config], httpx.AsyncClient(transport=httpx.MockTransport(handler)), RuntimeMetrics("bot", "r1"))


async def test_a_get_tool_with_cache_seconds_calls_the_system_once_per_arguments() -> None:
    calls: list[httpx.Request] = []
    box = crm(calls)
    first = await box.call("lookup_customer", json.dumps({"email": "ada@example.com"}))
    again = await box.call("lookup_customer", {"email": "ada@example.com"})
    other = await box.call("lookup_customer", {"email": "bob@example.com"})
    assert len(calls) == 2
    assert again.ok and again.cached and again.content == first.content and again.data == first.data
    assert not first.cached and not other.cached and "bob@example.com" in other.content
    registry = box.metrics.registry  # type: ignore[union-attr]

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("agent_tool_cache_requests_total", tool="lookup_customer", result="hit") == 1
    assert sample("agent_tool_cache_requests_total", tool="lookup_customer", result="miss") == 2
    # agent_tool_calls_total counts the calls that reached the system.
    assert sample("agent_tool_calls_total", tool="lookup_customer", outcome="success") == 2


async def test_a_cached_tool_result_expires_after_cache_seconds() -> None:
    calls: list[httpx.Request] = []
    box = crm(calls, cache_seconds=30)
    clock = FakeClock()
    box.cache = ToolResultCache(clock=clock)
    await box.call("lookup_customer", {"email": "ada@example.com"})
    clock.advance(29)
    await box.call("lookup_customer", {"email": "ada@example.com"})
    clock.advance(1)
    await box.call("lookup_customer", {"email": "ada@example.com"})
    assert len(calls) == 2


async def test_failed_calls_and_tools_without_cache_seconds_are_not_cached() -> None:
    calls: list[httpx.Request] = []
    box = crm(calls, status=404)
    assert not (await box.call("lookup_customer", {"email": "ada@example.com"})).ok
    assert not (await box.call("lookup_customer", {"email": "ada@example.com"})).ok
    assert len(calls) == 2 and len(box.cache) == 0
    plain: list[httpx.Request] = []
    box = crm(plain, cache_seconds=None)
    for _ in range(2):
        await box.call("lookup_customer", {"email": "ada@example.com"})
    assert len(plain) == 2
    assert (
        box.metrics.registry.get_sample_value(  # type: ignore[union-attr]
            "agent_tool_cache_requests_total", {"tool": "lookup_customer", "result": "miss"}
        )
        is None
    )


def test_the_tool_cache_is_bounded() -> None:
    clock = FakeClock()
    cache = ToolResultCache(max_entries=2, clock=clock)
    cache.put("a", 1, 5)
    cache.put("b", 2, 100)
    clock.advance(10)  # a has expired
    cache.put("c", 3, 100)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (MISSING, 2, 3)
    cache.put("d", None, 100)  # None is data too
    assert (cache.get("b"), cache.get("d")) == (MISSING, None)
