"""Two operator replicas with leader election: one reconciles, the other takes over when it dies."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.integration.operator_harness import OperatorProcess, install_crds_and_rbac
from tests.integration.test_operator import apply, ready, rules_agent, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def _reconciles(process: OperatorProcess) -> float:
    total = 0.0
    for line in process.metrics().splitlines():
        if line.startswith("agentfleet_reconcile_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_standby_takes_over_when_the_leader_is_killed(kubectl: Kubectl, namespace: str, tmp_path: Path,
                                                      serviceaccount_kubeconfig: Callable[[str, str], str]) -> None:
    install_crds_and_rbac(kubectl)
    config = serviceaccount_kubeconfig("agentfleet-system", "agentfleet-operator")
    args = ("--leader-elect", "--lease-seconds=6")
    first = OperatorProcess(config, tmp_path / "first.log", *args).start()
    wait_for("first leads", lambda: "became the leader" in first.log_tail(200), timeout=30)
    second = OperatorProcess(config, tmp_path / "second.log", *args).start()
    try:
        apply(kubectl, namespace, rules_agent("bot"))
        wait_for("Ready under the first leader", lambda: ready(kubectl, "bot", namespace))
        assert _reconciles(second) == 0, "the standby reconciled while the leader was alive"
        assert "became the leader" not in second.log_tail(200)

        first.stop(signal.SIGKILL)  # no clean hand-over: the Lease must expire
        wait_for("second leads", lambda: "became the leader" in second.log_tail(200), timeout=60)
        apply(kubectl, namespace, rules_agent("bot", replicas=2))
        agent = wait_for("reconciled by the new leader", lambda: (a := ready(kubectl, "bot", namespace)) and
                         a["status"]["replicas"] == 2 and a)
        assert agent["status"]["ready"] == "2/2"
        assert _reconciles(second) > 0
    finally:
        first.stop()
        second.stop()
