"""Run agent runtimes for tests: in-process (ASGI) or as real `agentfleet-runtime` processes,
plus configuration builders wired to the fake LLM and CRM."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from agentfleet_runtime.app import create_app
from agentfleet_runtime.config import RuntimeConfig

from .crm import FakeCRM
from .llm import FakeLLM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


LOOKUP_TOOL = {
    "name": "lookup_customer",
    "description": "Find a customer by e-mail",
    "method": "GET",
    "path": "/customers",
    "parameters": {
        "type": "object",
        "properties": {"email": {"type": "string", "minLength": 3}},
        "required": ["email"],
        "additionalProperties": False,
    },
}
LOOKUP_RULE = {
    "pattern": r"customer (?P<email>\S+@\S+)",
    "tool": "lookup_customer",
    "arguments": {"email": "{email}"},
    "reply": "Customer {tool_result[name]} is on the {tool_result[tier]} tier.",
}


def rules_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "agent": {"name": "support-bot", "namespace": "support", "revision": "r1"},
        "model": {
            "provider": "rules",
            "name": "rules",
            "rules": [
                LOOKUP_RULE,
                {"pattern": r"^hello\b", "reply": "Hello! How can I help you today?"},
            ],
        },
        "systemPrompt": "You are the support assistant of ACME.",
    }
    config.update(overrides)
    return config


def llm_config(llm: FakeLLM, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "agent": {"name": "support-bot", "namespace": "support", "revision": "r1"},
        "model": {
            "provider": "openai-compatible",
            "name": "fake-model",
            "endpoint": llm.url,
            "timeoutSeconds": 5,
            "maxRetries": 3,
        },
        "systemPrompt": "You are the support assistant of ACME.",
    }
    config.update(overrides)
    return config


def crm_connector(crm: FakeCRM, auth: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    connector = {
        "name": "crm",
        "type": "http",
        "endpoint": crm.base_url,
        "auth": auth or {"type": "none"},
        "tools": [LOOKUP_TOOL],
        "timeoutSeconds": 2,
        "retries": 1,
    }
    connector.update(overrides)
    return connector


@contextlib.asynccontextmanager
async def runtime_client(config: dict[str, Any], **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process runtime (lifespan included) and a client bound to it."""
    app = create_app(RuntimeConfig.model_validate(config))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://runtime", headers=headers, timeout=30
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def runtime_command() -> list[str]:
    script = Path(sys.executable).parent / "agentfleet-runtime"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agentfleet_runtime.main"]


class RuntimeProcess:
    """`agentfleet-runtime --config <file>` as a real process on a free port; stderr goes to a file."""

    def __init__(
        self, config: dict[str, Any], workdir: Path, name: str = "runtime", verify: ssl.SSLContext | bool = True
    ) -> None:
        self.port = free_port()
        # server.tls: the runtime serves HTTPS; `verify` is what the health check trusts then.
        self.tls = bool((config.get("server") or {}).get("tls"))
        self.verify = verify
        config = json.loads(json.dumps(config))
        config.setdefault("server", {}).update({"host": "127.0.0.1", "port": self.port})
        self.config_path = workdir / f"{name}.json"
        self.config_path.write_text(json.dumps(config))
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> RuntimeProcess:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*runtime_command(), "--config", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"runtime exited early:\n{self.logs()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=30, what="runtime /healthz")
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
