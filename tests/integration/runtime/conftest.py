"""Real parts for the runtime's integration tests: redis-server, the fake LLM and CRM, and
runtimes as subprocesses (`agentfleet-runtime --config f`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # `import tests.fakes` without relying on the pytest pythonpath setting
    sys.path.insert(0, str(ROOT))

from tests.fakes.crm import FakeCRM  # noqa: E402
from tests.fakes.llm import FakeLLM  # noqa: E402
from tests.fakes.runtime import RuntimeProcess, free_port, wait_until  # noqa: E402


@dataclass
class RedisServer:
    port: int
    url: str
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; CI must provide it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    data_dir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, f"redis://127.0.0.1:{port}/0", process)
    client = server.client()

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(up, what="redis-server to answer PING")
        yield server
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A clean Redis for one test."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        yield llm  # type: ignore[misc]


@pytest.fixture
def fake_crm() -> Iterator[FakeCRM]:
    with FakeCRM() as crm:
        yield crm  # type: ignore[misc]


@pytest.fixture
def spawn_runtime(tmp_path: Path) -> Iterator[Any]:
    started: list[RuntimeProcess] = []

    def spawn(config: dict[str, Any], name: str = "runtime", verify: Any = True) -> RuntimeProcess:
        runtime = RuntimeProcess(config, tmp_path, name, verify=verify).start()
        started.append(runtime)
        return runtime

    yield spawn
    for runtime in started:
        runtime.stop()
