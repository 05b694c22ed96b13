"""Session memory in a real redis-server: sharing across processes, TTL, trimming, encryption,
redaction and erasure."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import crm_connector, llm_config, rules_config, runtime_client

pytestmark = pytest.mark.integration

PII = {
    "email": "ada.lovelace@example.com",
    "phone": "+44 20 7946 0958",
    "creditCard": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
}


def state(url: str, **overrides: Any) -> dict[str, Any]:
    return {"store": "redis", "redisURL": url, **overrides}


def session_keys(db: redis.Redis) -> list[bytes]:
    return sorted(db.scan_iter(match="af:*"))


def everything_stored(db: redis.Redis) -> bytes:
    dump = b""
    for key in db.scan_iter(match="*"):
        dump += key + b"\n"
        kind = db.type(key)
        if kind == b"list":
            dump += b"\n".join(db.lrange(key, 0, -1))
        elif kind == b"string":
            dump += db.get(key) or b""
        elif kind == b"hash":
            dump += b"\n".join(k + b"=" + v for k, v in db.hgetall(key).items())
    return dump


def test_a_second_process_continues_the_conversation(redis_server, redis_db, fake_llm: FakeLLM, spawn_runtime) -> None:
    config = llm_config(fake_llm, state=state(redis_server.url))
    first, second = spawn_runtime(config, "first"), spawn_runtime(config, "second")
    headers = {"X-Session-ID": "conv-1"}
    one = httpx.post(
        f"{first.url}/v1/chat/completions",
        headers=headers,
        timeout=10,
        json={"messages": [{"role": "user", "content": "my name is Grace"}]},
    )
    assert one.status_code == 200
    two = httpx.post(
        f"{second.url}/v1/chat/completions",
        headers=headers,
        timeout=10,
        json={"messages": [{"role": "user", "content": "what is my name?"}]},
    )
    assert two.status_code == 200
    sent = fake_llm.requests[-1]["messages"]
    assert [m["content"] for m in sent[1:]] == ["my name is Grace", "Echo: my name is Grace", "what is my name?"]
    history = httpx.get(f"{first.url}/v1/sessions/conv-1", timeout=10).json()
    assert history["turns"] == 2
    (key,) = session_keys(redis_db)
    assert key.startswith(b"af:{support/support-bot/") and key.endswith(b"}:turns")


async def test_idle_sessions_expire(redis_server, redis_db) -> None:
    async with runtime_client(rules_config(state=state(redis_server.url, ttlSeconds=1))) as client:
        await client.post("/v1/sessions/short/messages", json={"content": "hello"})
        (key,) = session_keys(redis_db)
        assert 0 < redis_db.pttl(key) <= 1000
        for _ in range(100):
            if not session_keys(redis_db):
                break
            await asyncio.sleep(0.05)
        assert session_keys(redis_db) == []
        assert (await client.get("/v1/sessions/short")).status_code == 404


async def test_expiry_slides_on_every_use(redis_server, redis_db) -> None:
    async with runtime_client(rules_config(state=state(redis_server.url, ttlSeconds=100))) as client:
        await client.post("/v1/sessions/s/messages", json={"content": "hello"})
        (key,) = session_keys(redis_db)
        redis_db.expire(key, 5)
        await client.get("/v1/sessions/s")
        assert redis_db.ttl(key) > 5


async def test_old_turns_are_trimmed(redis_server, redis_db) -> None:
    async with runtime_client(rules_config(state=state(redis_server.url, maxTurns=3))) as client:
        for i in range(5):
            await client.post("/v1/sessions/s/messages", json={"content": f"hello {i}"})
        (key,) = session_keys(redis_db)
        assert redis_db.llen(key) == 3
        history = (await client.get("/v1/sessions/s")).json()
    assert history["turns"] == 3
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["hello 2", "hello 3", "hello 4"]


async def test_encrypted_sessions_are_unreadable_in_redis(redis_server, redis_db, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"0123456789abcdef0123456789abcdef")
    config = rules_config(state=state(redis_server.url, encryptionKeyFile=str(key_file)))
    async with runtime_client(config) as client:
        await client.post("/v1/sessions/secret/messages", json={"content": "hello the launch code is swordfish"})
        raw = everything_stored(redis_db)
        assert b"swordfish" not in raw and b"hello" not in raw and b"launch" not in raw
        history = (await client.get("/v1/sessions/secret")).json()
    assert history["messages"][0]["content"] == "hello the launch code is swordfish"
    # A runtime holding another key cannot read the session (and does not fail either).
    other_key = tmp_path / "other"
    other_key.write_bytes(b"another key entirely")
    config = rules_config(state=state(redis_server.url, encryptionKeyFile=str(other_key)))
    async with runtime_client(config) as client:
        assert (await client.get("/v1/sessions/secret")).status_code == 404


def test_pii_reaches_neither_redis_nor_the_logs(redis_server, redis_db, fake_crm, spawn_runtime) -> None:
    config = rules_config(state=state(redis_server.url, redaction=list(PII)), connectors=[crm_connector(fake_crm)])
    runtime = spawn_runtime(config)
    text = f"customer {PII['email']} called from {PII['phone']}, card {PII['creditCard']}, iban {PII['iban']}"
    session = f"user-{PII['email']}"
    response = httpx.post(f"{runtime.url}/v1/sessions/{session}/messages", json={"content": text}, timeout=10)
    assert response.status_code == 200
    assert response.json()["toolCalls"][0]["arguments"] == {"email": PII["email"]}  # the tool got the real value
    httpx.post(
        f"{runtime.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": text}], "user": PII["email"]},
        timeout=10,
    )
    stored = everything_stored(redis_db)
    logs = runtime.logs()
    assert b"[REDACTED:email]" in stored  # stored as plain JSON here, so the marker is visible
    assert stored and logs
    assert "request" in logs  # the access log did write lines, paths with the session id included
    for value in PII.values():
        assert value.encode() not in stored
        assert value not in logs
    history = httpx.get(f"{runtime.url}/v1/sessions/{session}", timeout=10).json()
    assert "[REDACTED:email]" in history["messages"][0]["content"]


async def test_delete_erases_the_session_from_redis(redis_server, redis_db) -> None:
    async with runtime_client(rules_config(state=state(redis_server.url))) as client:
        for sid in ("a", "b"):
            await client.post(f"/v1/sessions/{sid}/messages", json={"content": "hello"})
        assert len(session_keys(redis_db)) == 2
        assert (await client.delete("/v1/sessions/a")).status_code == 204
        assert len(session_keys(redis_db)) == 1
        assert (await client.get("/v1/sessions/a")).status_code == 404
        assert (await client.get("/v1/sessions/b")).status_code == 200
        assert (await client.delete("/v1/sessions/a")).status_code == 204  # idempotent


async def test_unreachable_redis_is_not_ready_and_a_clean_503() -> None:
    from tests.fakes.runtime import free_port

    config = rules_config(state=state(f"redis://127.0.0.1:{free_port()}/0"))
    async with runtime_client(config) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["stateStore"] == "unreachable"
        assert (await client.get("/healthz")).status_code == 200
        response = await client.post("/v1/sessions/s/messages", json={"content": "hello"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "state_unavailable"


async def test_session_key_names_are_keyed_and_old_sessions_move_over(redis_server, redis_db, tmp_path: Path) -> None:

    session = "ada.lovelace@example.com"
    guessed = hashlib.sha256(session.encode()).hexdigest()[:32].encode()
    encryption = tmp_path / "enc"
    encryption.write_bytes(b"0123456789abcdef0123456789abcdef")
    # Before: a store without a session key names the session by its plain hash, which anyone can
    # compute from a guessed address.
    async with runtime_client(rules_config(state=state(redis_server.url, encryptionKeyFile=str(encryption)))) as client:
        await client.post(f"/v1/sessions/{session}/messages", json={"content": "hello first"})
    (before,) = session_keys(redis_db)
    assert guessed in before

    hmac_key = tmp_path / "hmac"
    hmac_key.write_bytes(b"per-policy-session-key-7f3a\n")
    keyed = state(redis_server.url, encryptionKeyFile=str(encryption), sessionKeyFile=str(hmac_key))
    async with runtime_client(rules_config(state=keyed)) as client:
        # The old conversation is still there, and moves to the keyed name on the first read.
        history = (await client.get(f"/v1/sessions/{session}")).json()
        assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["hello first"]
        await client.post(f"/v1/sessions/{session}/messages", json={"content": "hello again"})
        (after,) = session_keys(redis_db)
        assert guessed not in after and redis_db.llen(after) == 2
        history = (await client.get(f"/v1/sessions/{session}")).json()
        assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["hello first", "hello again"]
        assert (await client.delete(f"/v1/sessions/{session}")).status_code == 204
        assert session_keys(redis_db) == []
