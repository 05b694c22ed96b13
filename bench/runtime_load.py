"""The runtime under load: `agentfleet-runtime` pinned to core 1, a real redis-server pinned to
core 0, driven by wrk (a separate process, on core 0) with a Lua script that POSTs chat completions.

Two measurements:
 - throughput: rules model + Redis state, many connections, requests/s and p50/p99 latency;
 - added latency: the runtime in front of a fake LLM with a fixed delay, versus wrk hitting the fake
   LLM directly with the same body at the same concurrency: added = runtime p50/p99 - direct p50/p99."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.runtime import free_port, runtime_command

API_KEY = "bench-key-0123456789"
RUNTIME_CORE, OTHER_CORE = "1", "0"
LLM_DELAY = 0.05  # seconds the fake model takes to answer
ROOT = Path(__file__).resolve().parent.parent

LUA = r"""
local counter = 0
local body = '{"messages":[{"role":"user","content":"hello there, how are you?"}]}'
request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer %(key)s"
  headers["X-Session-ID"] = "bench-" .. (counter %% 256)
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end
done = function(summary, latency, requests)
  io.write(string.format(
    '\nRESULT {"requests":%%d,"duration_us":%%d,"connect_errors":%%d,"read_errors":%%d,"status_errors":%%d,' ..
    '"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.status,
    summary.errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not up")


def _wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            OTHER_CORE,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    raw = json.loads(line[len("RESULT ") :])
    errors = raw["connect_errors"] + raw["read_errors"] + raw["status_errors"] + raw["timeouts"]
    return {
        "connections": connections,
        "seconds": seconds,
        "requests": raw["requests"],
        "errors": errors,
        "requests_per_second": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
    }


class _Runtime:
    def __init__(self, config: dict[str, Any], workdir: Path, name: str) -> None:
        self.port = free_port()
        config = dict(config, server={"host": "127.0.0.1", "port": self.port})
        self.config_path = workdir / f"{name}.json"
        self.config_path.write_text(json.dumps(config))
        self.log = (workdir / f"{name}.log").open("wb")
        self.process = subprocess.Popen(
            [
                "taskset",
                "-c",
                RUNTIME_CORE,
                *runtime_command(),
                "--config",
                str(self.config_path),
                "--log-level",
                "WARNING",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        _wait_http(f"{self.url}/healthz")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _identity() -> dict[str, str]:
    return {"name": "bench", "namespace": "bench", "revision": "r1"}


def run_runtime(quick: bool) -> dict[str, Any]:
    seconds = 10 if quick else 30
    workdir = Path(tempfile.mkdtemp(prefix="agentfleet-bench-runtime-"))
    keys = workdir / "keys"
    keys.mkdir()
    (keys / "apiKey").write_text(API_KEY)
    script = workdir / "chat.lua"
    script.write_text(LUA % {"key": API_KEY})
    redis_port = free_port()
    redis = subprocess.Popen(
        [
            "taskset",
            "-c",
            OTHER_CORE,
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, Any] = {"runtime_core": RUNTIME_CORE, "load_core": OTHER_CORE, "wrk": "wrk -t1 (Lua POST)"}
    runtime = llm_runtime = None
    # The fake LLM runs in its own process on the load core: in this process its threads would share the
    # GIL with nothing useful and could be scheduled on the runtime's core.
    llm_port = free_port()
    llm = subprocess.Popen(
        [
            "taskset",
            "-c",
            OTHER_CORE,
            sys.executable,
            "-m",
            "tests.fakes.llm",
            "--port",
            str(llm_port),
            "--delay",
            str(LLM_DELAY),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    llm_url = f"http://127.0.0.1:{llm_port}"
    try:
        _wait_http(f"{llm_url}/v1/models")
        time.sleep(0.5)
        rules = {
            "agent": _identity(),
            "access": {"apiKeysDir": str(keys)},
            "model": {
                "provider": "rules",
                "name": "rules",
                "rules": [{"pattern": r"^hello\b", "reply": "Hello! How can I help you today?"}],
            },
            "systemPrompt": "You greet people.",
            "state": {"store": "redis", "redisURL": f"redis://127.0.0.1:{redis_port}/0"},
        }
        runtime = _Runtime(rules, workdir, "rules-redis")
        _wrk(runtime.url, script, 16, 3)  # warm-up
        results["rules_redis"] = _wrk(runtime.url, script, 32, seconds)
        results["rules_redis_c8"] = _wrk(runtime.url, script, 8, seconds)
        runtime.stop()
        runtime = None

        llm_cfg = {
            "agent": _identity(),
            "access": {"apiKeysDir": str(keys)},
            "model": {
                "provider": "openai-compatible",
                "name": "fake-model",
                "endpoint": f"{llm_url}/v1",
                "timeoutSeconds": 5,
                "maxRetries": 0,
            },
            "systemPrompt": "You greet people.",
        }
        llm_runtime = _Runtime(llm_cfg, workdir, "llm")
        _wrk(llm_runtime.url, script, 4, 2)  # warm-up
        via_runtime = _wrk(llm_runtime.url, script, 8, seconds)
        direct = _wrk(llm_url, script, 8, seconds)
        results["llm_delay_ms"] = round(LLM_DELAY * 1000)
        results["llm_direct"] = direct
        results["llm_via_runtime"] = via_runtime
        results["added_p50_ms"] = round(via_runtime["p50_ms"] - direct["p50_ms"], 2)
        results["added_p99_ms"] = round(via_runtime["p99_ms"] - direct["p99_ms"], 2)
    finally:
        for proc in (runtime, llm_runtime):
            if proc is not None:
                proc.stop()
        llm.terminate()
        llm.wait(timeout=10)
        redis.terminate()
        redis.wait(timeout=10)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
    return results
