"""What the canary end-to-end tests need beside the cluster: a real Prometheus, real runtime processes
standing in for the kwok pods of each track, a bounded load generator and watches on the Agent.

kwok pods run no containers, so every track (stable, canary) is played by a local `agentfleet-runtime`
whose config is the very file the operator rendered for that revision (ConfigMap
`<agent>-config-<revision>`), with the Secret mounts rewritten to temp files holding the Secrets' values
and the server moved to a loopback port that Prometheus scrapes.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fakes.runtime import RuntimeProcess, free_port
from tests.integration.operator_harness import OperatorProcess
from tests.tools import tool

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

SECRETS_DIR = "/var/run/agentfleet/secrets/"
# Limits to give up waiting, never timings under test.
READY_WITHIN = 60.0


def prometheus_binary() -> str:
    return tool("prometheus", "make deps builds it")


def _stop_process(process: subprocess.Popen[Any] | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class NamespacedOperator(OperatorProcess):
    """The operator watching only the test's namespace, so it never touches other people's tests."""

    def __init__(self, kubeconfig: str, log_path: Path, namespace: str) -> None:
        # HOSTNAME becomes the Events' reportingInstance: tells this operator's Events from any other's.
        super().__init__(
            kubeconfig, log_path, scope=(f"--namespace={namespace}",), env={"HOSTNAME": f"canary-e2e-{namespace}"}
        )
        self.namespace = namespace
        self.instance = f"canary-e2e-{namespace}"


class Prometheus:
    """A real Prometheus scraping fixed loopback targets every second."""

    def __init__(self, home: Path, targets: list[int], labels: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "agents",
                    "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in targets], "labels": labels}],
                }
            ],
        }
        (home / "prometheus.yml").write_text(yaml.safe_dump(config))

    def start(self) -> Prometheus:
        binary = prometheus_binary()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.home / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
            )
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}", pytrace=False)
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"prometheus not ready within {READY_WITHIN:g}s:\n{self.log_tail()}", pytrace=False)

    def stop(self) -> None:
        _stop_process(self.process, timeout=30)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
        return answer.get("data", {}).get("result", [])


def _rewrite_secret_paths(value: Any, local: Path, found: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _rewrite_secret_paths(v, local, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_secret_paths(v, local, found) for v in value]
    if isinstance(value, str) and value.startswith(SECRETS_DIR):
        rest = value[len(SECRETS_DIR) :]
        found.add(rest.split("/", 1)[0])
        return str(local / rest)
    return value


class PinnedRuntime(RuntimeProcess):
    """RuntimeProcess on a port chosen beforehand (the one Prometheus scrapes for the track)."""

    def __init__(self, config: dict[str, Any], workdir: Path, name: str, port: int) -> None:
        super().__init__(config, workdir, name)
        self.port = port
        config = json.loads(self.config_path.read_text())
        config["server"]["port"] = port
        self.config_path.write_text(json.dumps(config))


class Tracks:
    """Plays the pods of each track with a runtime process running that revision's rendered config."""

    TRACKS = ("stable", "canary")

    def __init__(self, kubectl: Kubectl, namespace: str, agent: str, workdir: Path) -> None:
        self.kubectl, self.namespace, self.agent, self.workdir = kubectl, namespace, agent, workdir
        self.ports = {track: free_port() for track in self.TRACKS}
        self.running: dict[str, tuple[str, PinnedRuntime]] = {}

    def url(self, track: str) -> str:
        return f"http://127.0.0.1:{self.ports[track]}"

    def _get(self, kind: str, name: str) -> dict[str, Any]:
        result = self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=True)
        return json.loads(result.stdout)

    def rendered_config(self, revision: str) -> dict[str, Any]:
        config_map = self._get("configmap", f"{self.agent}-config-{revision}")
        config = json.loads(config_map["data"]["config.json"])
        assert config["agent"]["revision"] == revision
        local = self.workdir / f"secrets-{revision}"
        secrets: set[str] = set()
        config = _rewrite_secret_paths(config, local, secrets)
        for name in sorted(secrets):
            folder = local / name
            folder.mkdir(parents=True, exist_ok=True)
            for key, encoded in (self._get("secret", name).get("data") or {}).items():
                (folder / key).write_text(base64.b64decode(encoded).decode())
        config.setdefault("server", {})["host"] = "127.0.0.1"
        return config

    def run(self, track: str, revision: str) -> PinnedRuntime:
        current = self.running.get(track)
        if current and current[0] == revision:
            return current[1]
        if current:
            current[1].stop()
        runtime = PinnedRuntime(self.rendered_config(revision), self.workdir, f"{track}-{revision}", self.ports[track])
        self.running[track] = (revision, runtime)  # before start: stop() must reach a half-started one too
        return runtime.start()

    def access_key(self) -> str:
        encoded = self._get("secret", f"{self.agent}-access")["data"]["apiKey"]
        return base64.b64decode(encoded).decode()

    def stop(self) -> None:
        for _, runtime in self.running.values():
            runtime.stop(timeout=10)
        self.running.clear()


class Load:
    """A few threads per track posting chat completions; bounded in time and rate."""

    def __init__(self, key: str, max_seconds: float = 150.0, pause: float = 0.05, threads_per_target: int = 3) -> None:
        self.key, self.max_seconds, self.pause, self.threads = key, max_seconds, pause, threads_per_target
        self.codes: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._started = time.monotonic()

    def add(self, track: str, url: str) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(track, url), name=f"load-{track}-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def _run(self, track: str, url: str) -> None:
        body = {"model": "agent", "messages": [{"role": "user", "content": "hi there"}]}
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=15) as client:
            while not self._stop.is_set() and time.monotonic() - self._started < self.max_seconds:
                try:
                    code = client.post(f"{url}/v1/chat/completions", json=body, headers=headers).status_code
                except httpx.HTTPError:
                    code = 0
                with self._lock:
                    self.codes[track, code] += 1
                self._stop.wait(self.pause)

    def count(self, track: str, code: int | None = None) -> int:
        with self._lock:
            return sum(n for (t, c), n in self.codes.items() if t == track and (code is None or c == code))

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=20)


class AgentWatch:
    """`kubectl get agt <name> -w`, twice: as JSON (every version of the object) and as the table
    people read (the CANARY column), each in a background process read by a thread."""

    def __init__(self, kubeconfig: str, namespace: str, name: str) -> None:
        base = ["kubectl", f"--kubeconfig={kubeconfig}", "get", "agt", name, "-n", namespace, "-w"]
        self.versions: list[dict[str, Any]] = []
        self.rows: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._json = subprocess.Popen(
            [*base, "-o", "json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._table = subprocess.Popen(
            base, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True
        )
        self._threads = [
            threading.Thread(target=self._read_json, daemon=True),
            threading.Thread(target=self._read_table, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_json(self) -> None:
        assert self._json.stdout is not None
        buffer: list[str] = []
        for line in self._json.stdout:
            buffer.append(line)
            if line.rstrip("\n") == "}":  # a top-level object ends at column 0
                obj = json.loads("".join(buffer))
                buffer.clear()
                with self._lock:
                    self.versions.append(obj)

    def _read_table(self) -> None:
        assert self._table.stdout is not None
        header: list[str] | None = None
        for line in self._table.stdout:
            cells = line.split()
            if not cells:
                continue
            if header is None:
                header = cells
                continue
            if len(cells) == len(header):
                with self._lock:
                    self.rows.append(dict(zip(header, cells, strict=True)))

    def canary_weights(self) -> list[str]:
        """The CANARY column in the order `kubectl get agt -w` showed it, repeats collapsed."""
        with self._lock:
            values = [row.get("CANARY", "") for row in self.rows]
        return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]

    def statuses(self) -> list[dict[str, Any]]:
        with self._lock:
            return [v.get("status") or {} for v in self.versions]

    def history(self) -> str:
        """One line per version of the Agent: what a failing assertion needs to explain itself."""
        with self._lock:
            versions = list(self.versions)
        lines = []
        for obj in versions:
            status = obj.get("status") or {}
            rollout, revision = status.get("rollout") or {}, status.get("revision") or {}
            lines.append(
                f"rv={obj['metadata'].get('resourceVersion')} phase={status.get('phase')} "
                f"rollout={rollout.get('phase')} step={rollout.get('step')} weight={rollout.get('weight')} "
                f"stable={revision.get('stable')} canary={revision.get('canary')} "
                f"failures={rollout.get('failures')} inconclusive={rollout.get('inconclusive')} "
                f"measurements={len(rollout.get('analysis') or [])} message={rollout.get('message', '')[:120]!r}"
            )
        return "\n".join(lines)

    def stop(self) -> None:
        for process in (self._json, self._table):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
