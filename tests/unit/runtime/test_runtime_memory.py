from __future__ import annotations

import json

from agentfleet_runtime.memory.base import SessionMemory, Turn, session_key
from agentfleet_runtime.memory.crypto import RecordCipher
from agentfleet_runtime.memory.memory_store import InMemoryBackend
from agentfleet_runtime.memory.redaction import Redactor

from tests.fakes.clock import FakeClock


def memory(clock: FakeClock, **kwargs: object) -> SessionMemory:
    backend = InMemoryBackend(ttl_seconds=10, max_turns=3, clock=clock)
    return SessionMemory(backend, namespace="ns", agent="bot", **kwargs)  # type: ignore[arg-type]


def test_key_layout_keeps_a_session_in_one_slot_and_hides_the_id() -> None:
    key = session_key("support", "bot", "ada@example.com")
    assert key.startswith("af:{support/bot/") and key.endswith("}:turns")
    assert "ada" not in key
    assert key == session_key("support", "bot", "ada@example.com")
    assert key != session_key("support", "bot", "bob@example.com")


async def test_turns_are_trimmed_to_max_turns() -> None:
    mem = memory(FakeClock())
    for i in range(5):
        await mem.append("s", Turn([{"role": "user", "content": f"q{i}"}], f"a{i}"))
    assert [t.reply for t in await mem.history("s")] == ["a2", "a3", "a4"]


async def test_expiry_slides_with_use() -> None:
    clock = FakeClock()
    mem = memory(clock)
    await mem.append("s", Turn([{"role": "user", "content": "q"}], "a"))
    clock.advance(8)
    assert await mem.history("s")  # a read refreshes the TTL
    clock.advance(8)
    assert await mem.history("s")
    clock.advance(10.1)
    assert await mem.history("s") == []


async def test_erase() -> None:
    mem = memory(FakeClock())
    await mem.append("s", Turn([{"role": "user", "content": "q"}], "a"))
    assert await mem.erase("s")
    assert await mem.history("s") == []
    assert not await mem.erase("s")


async def test_records_are_redacted_and_encrypted_before_the_store() -> None:
    clock = FakeClock()
    mem = memory(clock, redactor=Redactor(["email"]), cipher=RecordCipher(b"k"))
    await mem.append(
        "s",
        Turn(
            [{"role": "user", "content": "I am ada@example.com"}],
            "hi ada@example.com",
            [{"name": "lookup", "arguments": {"email": "ada@example.com"}}],
        ),
    )
    raw = await mem.backend.load(mem.key("s"))
    assert b"ada@example.com" not in raw[0] and b"REDACTED" not in raw[0]  # ciphertext only
    (turn,) = await mem.history("s")
    assert turn.messages[0]["content"] == "I am [REDACTED:email]"
    assert turn.tool_calls[0]["arguments"]["email"] == "[REDACTED:email]"


async def test_a_record_under_another_key_is_skipped_not_fatal() -> None:
    clock = FakeClock()
    backend = InMemoryBackend(ttl_seconds=10, max_turns=5, clock=clock)
    old = SessionMemory(backend, namespace="ns", agent="bot", cipher=RecordCipher(b"old"))
    new = SessionMemory(backend, namespace="ns", agent="bot", cipher=RecordCipher(b"new"))
    await old.append("s", Turn([], "before rotation"))
    await new.append("s", Turn([], "after rotation"))
    assert [t.reply for t in await new.history("s")] == ["after rotation"]


async def test_plain_records_are_json() -> None:
    mem = memory(FakeClock())
    await mem.append("s", Turn([{"role": "user", "content": "q"}], "a"))
    (raw,) = await mem.backend.load(mem.key("s"))
    assert json.loads(raw)["reply"] == "a"


def test_a_session_key_makes_names_unguessable_from_the_id() -> None:
    plain = session_key("support", "bot", "ada@example.com")
    keyed = session_key("support", "bot", "ada@example.com", b"k1")
    assert keyed != plain and keyed.startswith("af:{support/bot/k") and keyed.endswith("}:turns")
    assert keyed == session_key("support", "bot", "ada@example.com", b"k1")
    assert keyed != session_key("support", "bot", "ada@example.com", b"k2")


async def test_erase_removes_a_session_under_either_name() -> None:
    clock = FakeClock()
    backend = InMemoryBackend(ttl_seconds=10, max_turns=3, clock=clock)
    old = SessionMemory(backend, namespace="ns", agent="bot")
    await old.append("s", Turn([{"role": "user", "content": "q"}], "a"))
    new = SessionMemory(backend, namespace="ns", agent="bot", key_secret=b"k")
    assert await new.erase("s") is True
    assert await old.history("s") == [] and await new.history("s") == []
