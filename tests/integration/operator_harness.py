"""Run the real operator (the `agentfleet-operator` console script) against the test cluster, under
the ServiceAccount and ClusterRole it ships in manifests/base, never as cluster-admin."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / ".venv" / "bin" / "agentfleet-operator"
# What of manifests/base/operator the tests install: all but the Deployment and its Service. The
# admission policy is among it, so every test runs with the gate users get (tests create objects
# as the admin, who passes it; tests/integration/test_admission_policy.py checks it).
INSTALLED_KINDS = {
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install_crds_and_rbac(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "crds"), check=True)
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/agents.agentfleet.dev",
        "crd/connectors.agentfleet.dev",
        "crd/statepolicies.agentfleet.dev",
        check=True,
    )
    rendered = kubectl("kustomize", str(ROOT / "manifests" / "base" / "operator"), check=True).stdout
    # The operator Deployment itself is not applied: on this cluster its pod would not run anything.
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in INSTALLED_KINDS]
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(docs), check=True)


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: str,
        log_path: Path,
        *extra: str,
        scope: tuple[str, ...] = ("--all-namespaces",),
        env: dict[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.extra = extra
        self.scope = scope
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    # An operator watching every namespace is ready once kopf has listed each resource in each of
    # them; late in a full run, with many (terminating) namespaces on a slowed machine, that once took
    # longer than 60 s, and the session operator's restart failed with every later test behind it.
    def start(self, timeout: float = 240) -> OperatorProcess:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, AGENTFLEET_LOG_WRITES="1", **self.env)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(OPERATOR),
                *self.scope,
                f"--metrics-port={self.metrics_port}",
                f"--health-port={self.health_port}",
                "--log-format=json",
                *self.extra,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"operator exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop(signal.SIGKILL)  # never leave a half-started operator behind
        raise RuntimeError(f"operator not ready within {timeout}s:\n{tail}")

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False  # whatever answers on the port then, it is not this operator
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return response.read().decode()

    def api_requests(self) -> dict[str, float]:
        """Requests the operator issued, by verb, as its own client counted them."""
        counts: dict[str, float] = {}
        for match in re.finditer(r'^agentfleet_api_requests\{verb="([a-z]+)"\} ([0-9.e+]+)$', self.metrics(), re.M):
            counts[match.group(1)] = float(match.group(2))
        return counts

    def writes(self) -> float:
        return sum(v for k, v in self.api_requests().items() if k in ("apply", "create", "patch", "delete", "update"))

    def writes_in(self, namespace: str) -> list[str]:
        """Write requests the operator logged (AGENTFLEET_LOG_WRITES) for objects in one namespace;
        other tests may share the cluster, so a global count would not be about this test."""
        marker = f"/namespaces/{namespace}/"
        return [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if '"write: ' in line and marker in line
        ]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
