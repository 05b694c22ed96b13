"""Faults under a real runtime process: Redis killed and restarted (AOF), Redis down mid-turn, a hanging model.

Each test runs its own redis-server (AOF, fsync on every write) so it can be SIGKILLed and brought
back on the same port and data directory without disturbing the suite's shared server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import RuntimeProcess, free_port, llm_config, wait_until

pytestmark = pytest.mark.integration

# Generous client-side bound: a request that has not answered by then is a hang, and fails the test.
CLIENT_TIMEOUT = 15.0


def redis_executable() -> str:
    exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; CI must provide it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return exe


class DurableRedis:
    """A redis-server with AOF persistence that can be killed and started again on the same port and dir."""

    def __init__(self, exe: str, data_dir: Path) -> None:
        self.exe = exe
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def _answers(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:  # connection refused, or LOADING while the AOF is replayed
            return False
        finally:
            client.close()

    def start(self) -> DurableRedis:
        assert self.process is None or self.process.poll() is not None, "redis-server is already running"
        self.process = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, what="redis-server to answer PING")
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    data_dir = tmp_path / "redis-data"
    data_dir.mkdir()
    server = DurableRedis(redis_executable(), data_dir).start()
    try:
        yield server
    finally:
        server.stop()


def redis_state(url: str) -> dict[str, Any]:
    return {"store": "redis", "redisURL": url}


def chat(runtime: RuntimeProcess, session: str, text: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{runtime.url}/v1/chat/completions",
        headers={"X-Session-ID": session},
        json={"messages": [{"role": "user", "content": text}], **extra},
        timeout=CLIENT_TIMEOUT,
    )


def stored_records(db: redis.Redis) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for key in db.scan_iter(match="af:*"):
        records.extend(json.loads(raw) for raw in db.lrange(key, 0, -1))
    return records


def assert_json_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == code


def assert_clean_log(runtime: RuntimeProcess) -> None:
    logs = runtime.logs()
    assert "Traceback" not in logs and "unhandled error" not in logs, logs


def test_history_survives_a_redis_kill_and_restart_with_aof(
    durable_redis: DurableRedis, fake_llm: FakeLLM, spawn_runtime: Any
) -> None:
    runtime = spawn_runtime(llm_config(fake_llm, state=redis_state(durable_redis.url)))
    assert chat(runtime, "conv-aof", "my name is Grace").status_code == 200
    assert chat(runtime, "conv-aof", "I live in Arlington").status_code == 200

    durable_redis.kill()
    durable_redis.start()  # same port, same dir: the AOF is replayed

    third = chat(runtime, "conv-aof", "what is my name?")
    assert third.status_code == 200, third.text
    sent = [m["content"] for m in fake_llm.requests[-1]["messages"][1:]]
    assert sent == [
        "my name is Grace",
        "Echo: my name is Grace",
        "I live in Arlington",
        "Echo: I live in Arlington",
        "what is my name?",
    ]
    history = httpx.get(f"{runtime.url}/v1/sessions/conv-aof", timeout=CLIENT_TIMEOUT).json()
    assert history["turns"] == 3
    assert_clean_log(runtime)


def test_redis_down_is_a_503_before_the_model_is_asked_and_no_turn_is_half_written(
    durable_redis: DurableRedis, fake_llm: FakeLLM, spawn_runtime: Any
) -> None:
    # "Quick" is not claimed: how soon the 503 comes is a timing, for bench/, not an assertion here.
    runtime = spawn_runtime(llm_config(fake_llm, state=redis_state(durable_redis.url)))
    assert chat(runtime, "conv-down", "first question").status_code == 200
    assert httpx.get(f"{runtime.url}/readyz", timeout=CLIENT_TIMEOUT).status_code == 200

    # 1. Redis is down before the turn starts: not ready, every session request a JSON 503, the model never asked.
    durable_redis.kill()
    asked = fake_llm.request_count
    ready = httpx.get(f"{runtime.url}/readyz", timeout=CLIENT_TIMEOUT)
    assert ready.status_code == 503 and ready.json()["checks"]["stateStore"] == "unreachable"
    assert httpx.get(f"{runtime.url}/healthz", timeout=CLIENT_TIMEOUT).status_code == 200
    assert_json_error(chat(runtime, "conv-down", "lost while down"), 503, "state_unavailable")
    assert_json_error(chat(runtime, "conv-down", "lost while down, streamed", stream=True), 503, "state_unavailable")
    message = httpx.post(
        f"{runtime.url}/v1/sessions/conv-down/messages", json={"content": "lost as well"}, timeout=CLIENT_TIMEOUT
    )
    assert_json_error(message, 503, "state_unavailable")
    assert_json_error(
        httpx.get(f"{runtime.url}/v1/sessions/conv-down", timeout=CLIENT_TIMEOUT), 503, "state_unavailable"
    )
    assert fake_llm.request_count == asked

    # 2. Redis dies while the model is answering: history was read, the write fails, the turn is not stored.
    durable_redis.start()
    wait_until(
        lambda: httpx.get(f"{runtime.url}/readyz", timeout=CLIENT_TIMEOUT).status_code == 200,
        what="runtime ready again",
    )
    assert chat(runtime, "conv-down", "second question").status_code == 200
    fake_llm.delay = 1.0
    outcome: dict[str, httpx.Response] = {}
    asked = fake_llm.request_count
    worker = threading.Thread(target=lambda: outcome.update(r=chat(runtime, "conv-down", "dies mid-turn")))
    worker.start()
    try:
        wait_until(lambda: fake_llm.request_count > asked, what="the model to be asked")
        durable_redis.kill()
    finally:
        worker.join(timeout=CLIENT_TIMEOUT + 5)
    fake_llm.delay = 0.0
    assert not worker.is_alive()
    assert_json_error(outcome["r"], 503, "state_unavailable")

    # 3. Back up: only complete exchanges, none of the failed turns.
    durable_redis.start()
    db = durable_redis.client()
    try:
        records = stored_records(db)
    finally:
        db.close()
    assert [r["messages"] for r in records] == [
        [{"role": "user", "content": "first question"}],
        [{"role": "user", "content": "second question"}],
    ]
    assert [r["reply"] for r in records] == ["Echo: first question", "Echo: second question"]
    history = httpx.get(f"{runtime.url}/v1/sessions/conv-down", timeout=CLIENT_TIMEOUT)
    assert history.status_code == 200, history.text
    messages = history.json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "second question"),
        ("assistant", "Echo: second question"),
    ]
    assert_clean_log(runtime)


def test_a_hanging_model_is_a_json_504(fake_llm: FakeLLM, spawn_runtime: Any) -> None:
    config = llm_config(fake_llm, state={"store": "memory"})
    config["model"].update(timeoutSeconds=1, maxRetries=1)
    runtime = spawn_runtime(config)
    fake_llm.mode = "hang"
    assert_json_error(chat(runtime, "conv-hang", "are you there?"), 504, "model_timeout")
    assert_json_error(chat(runtime, "conv-hang", "are you there?", stream=True), 504, "model_timeout")
    message = httpx.post(
        f"{runtime.url}/v1/sessions/conv-hang/messages", json={"content": "still there?"}, timeout=CLIENT_TIMEOUT
    )
    assert_json_error(message, 504, "model_timeout")
    assert fake_llm.request_count == 6  # one retry each
    # Nothing was remembered from the failed turns, and the runtime answers again once the model does.
    assert_json_error(
        httpx.get(f"{runtime.url}/v1/sessions/conv-hang", timeout=CLIENT_TIMEOUT), 404, "session_not_found"
    )
    fake_llm.mode = "ok"
    assert chat(runtime, "conv-hang", "hello again").json()["choices"][0]["message"]["content"] == "Echo: hello again"
    assert_clean_log(runtime)
