"""The demo MCP server (manifests/samples/demo/demo_mcp.py, the MCP SDK's own server) as a process
on loopback for the tests: started, stopped and restarted on the same port, as a real server is."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DEMO_MCP = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "demo" / "demo_mcp.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the demo MCP server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the demo MCP server did not listen on port {port} within {timeout}s")


@dataclass
class DemoMcp:
    port: int
    token: str | None
    transport: str
    schema: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        path = "/sse" if self.transport == "sse" else "/mcp"
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> DemoMcp:
        env = dict(os.environ)
        env.pop("DEMO_MCP_TOKEN", None)
        if self.token:
            env["DEMO_MCP_TOKEN"] = self.token
        args = ["--host", "127.0.0.1", "--port", str(self.port), "--transport", self.transport, "--schema", self.schema]
        self.process = subprocess.Popen(
            [sys.executable, str(DEMO_MCP), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, *, schema: str | None = None, token: str | None = None) -> DemoMcp:
        """Stopped and started again on the same port: every session it held is gone."""
        self.stop()
        if schema is not None:
            self.schema = schema
        if token is not None:
            self.token = token
        return self.start()


def start_demo_mcp(
    port: int | None = None, token: str | None = None, transport: str = "streamable-http", schema: str = "v1"
) -> DemoMcp:
    return DemoMcp(port or _free_port(), token, transport, schema).start()
