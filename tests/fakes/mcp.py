"""The demo MCP server (manifests/samples/demo/demo_mcp.py) as a real process for the tests.

    server = start_demo_mcp(token="t0ken")          # Streamable HTTP, schema v1, a free port
    server.url                                      # http://127.0.0.1:<port>/mcp (.../sse for sse)
    server.restart(schema="v2")                     # same port, other options (sessions are lost)
    server.tickets()                                # tickets it opened, from its own output
    server.stop()

It is the same server the samples run, so what the tests prove is what users can try.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .runtime import free_port

DEMO = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "demo" / "demo_mcp.py"


@dataclass(frozen=True)
class DemoOptions:
    port: int
    token: str | None = None
    transport: str = "streamable-http"  # streamable-http | sse
    schema: str = "v1"  # v1 | v2 (lookup_order also requires a region)
    era: str = "2026"  # 2026 | 2025 (no server/discover; sessions by Mcp-Session-Id)
    delay: float = 0.0  # seconds every tool takes to answer


@dataclass
class DemoMCP:
    options: DemoOptions
    process: subprocess.Popen[bytes] | None = None
    _outputs: list[Path] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.options.port

    @property
    def url(self) -> str:
        path = "/sse" if self.options.transport == "sse" else "/mcp"
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> DemoMCP:
        o = self.options
        command = [sys.executable, str(DEMO), "--host", "127.0.0.1", "--port", str(o.port)]
        command += ["--transport", o.transport, "--schema", o.schema, "--era", o.era, "--delay", str(o.delay)]
        env = {k: v for k, v in os.environ.items() if k != "DEMO_MCP_TOKEN"}
        if o.token:
            env["DEMO_MCP_TOKEN"] = o.token
        # Each run's output in its own file: tickets() counts over all runs of this handle.
        output = Path(tempfile.mkstemp(prefix="demo-mcp-", suffix=".log")[1])
        self._outputs.append(output)
        with output.open("wb") as sink:
            self.process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        _wait_for_port(self.port, self.process, output)
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

    def restart(self, **changes: object) -> DemoMCP:
        """Stop and start again on the same port, with `changes` to the options (schema="v2", ...)."""
        self.stop()
        self.options = replace(self.options, **changes)  # type: ignore[arg-type]
        return self.start()

    def output(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self._outputs if path.exists())

    def tickets(self) -> int:
        return sum(line.startswith("opened ticket ") for line in self.output().splitlines())

    def cleanup(self) -> None:
        self.stop()
        for path in self._outputs:
            path.unlink(missing_ok=True)

    def __enter__(self) -> DemoMCP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def start_demo_mcp(
    port: int | None = None,
    token: str | None = None,
    transport: str = "streamable-http",
    schema: str = "v1",
    *,
    era: str = "2026",
    delay: float = 0.0,
) -> DemoMCP:
    """Start the demo MCP server on 127.0.0.1 and return once its port accepts connections."""
    options = DemoOptions(port or free_port(), token, transport, schema, era, delay)
    return DemoMCP(options).start()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], output: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"demo MCP server exited early:\n{output.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"demo MCP server did not listen on port {port} within {timeout}s")
