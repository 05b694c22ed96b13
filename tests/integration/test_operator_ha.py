"""Two operator replicas with leader election: one reconciles, the other takes over when it dies.

Both replicas watch only the test's namespace and hold their Lease there, and the session operator
(all namespaces, no election) is stopped for the test, so every write in the namespace is one of
theirs: what the standby does after the kill is shown by its own write log, not inferred from an
Agent that some other operator may have reconciled."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.integration.operator_harness import OperatorProcess, install_crds_and_rbac
from tests.integration.test_operator import apply, ready, rules_agent, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
LEASE = "agentfleet-operator"


def _reconciles(process: OperatorProcess) -> float:
    total = 0.0
    for line in process.metrics().splitlines():
        if line.startswith("agentfleet_reconcile_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _holder(kubectl: Kubectl, namespace: str) -> str:
    result = kubectl("get", "lease", LEASE, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(result.stdout)["spec"].get("holderIdentity") or "" if result.stdout.strip() else ""


def _identity_of(process: OperatorProcess) -> str:
    assert process.process is not None
    return f"-{process.process.pid}"  # the elector's identity is <hostname>-<pid>


def _log_lines(process: OperatorProcess) -> list[str]:
    return process.log_path.read_text(errors="replace").splitlines()


def test_standby_takes_over_when_the_leader_is_killed(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    serviceaccount_kubeconfig: Callable[[str, str], str],
) -> None:
    install_crds_and_rbac(kubectl)
    operator.stop()  # the session operator would reconcile this namespace too
    config = serviceaccount_kubeconfig("agentfleet-system", "agentfleet-operator")

    def replica(name: str) -> OperatorProcess:
        # Watching only this namespace, with the Lease in it: no other test's objects or Lease interfere.
        return OperatorProcess(
            config,
            tmp_path / f"{name}.log",
            "--leader-elect",
            "--lease-seconds=6",
            scope=("--namespace", namespace),
            env={"POD_NAMESPACE": namespace},
        )

    first = replica("first").start()
    second: OperatorProcess | None = None
    try:
        wait_for("first leads", lambda: "became the leader" in first.log_tail(200), timeout=30)
        assert _holder(kubectl, namespace).endswith(_identity_of(first))
        second = replica("second").start()
        apply(kubectl, namespace, rules_agent("bot"))
        wait_for("Ready under the first leader", lambda: ready(kubectl, "bot", namespace))
        assert first.writes_in(namespace), "the leader wrote nothing, yet the Agent is Ready"
        assert _reconciles(second) == 0, "the standby reconciled while the leader was alive"
        assert second.writes_in(namespace) == [], "the standby wrote while the leader was alive"
        assert "became the leader" not in second.log_tail(200)

        first.stop(signal.SIGKILL)  # no clean hand-over: the Lease must expire
        writes_of_first = len(first.writes_in(namespace))
        wait_for("second leads", lambda: "became the leader" in second.log_tail(200), timeout=60)
        assert _holder(kubectl, namespace).endswith(_identity_of(second))
        apply(kubectl, namespace, rules_agent("bot", replicas=2))
        agent = wait_for(
            "reconciled by the new leader",
            lambda: (a := ready(kubectl, "bot", namespace)) and a["status"]["replicas"] == 2 and a,
        )
        assert agent["status"]["ready"] == "2/2"
        assert _reconciles(second) > 0

        # The new replica count, the PodDisruptionBudget two replicas call for and the status saying so
        # are the second replica's own writes, all of them after it took the Lease.
        lines = _log_lines(second)
        led_at = next(i for i, line in enumerate(lines) if "became the leader" in line)
        marker = f"/namespaces/{namespace}/"
        writes = [(i, line) for i, line in enumerate(lines) if '"write: ' in line and marker in line]
        assert writes and all(i > led_at for i, _ in writes), "the standby wrote before it led"
        written = " ".join(line for _, line in writes)
        for path in (f"{marker}deployments/bot", f"{marker}poddisruptionbudgets/bot", f"{marker}agents/bot/status"):
            assert path in written, f"no write of {path} by the new leader:\n{written}"
        assert len(first.writes_in(namespace)) == writes_of_first, "the killed leader's log grew"
    finally:
        first.stop()
        if second is not None:
            second.stop()
        operator.start()
