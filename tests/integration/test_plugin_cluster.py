"""`kubectl agentfleet` against a real API server: run as its own program and through kubectl's plugin
discovery, reading an Agent whose status is patched in by hand and setting intents on it.

No operator is needed. Other sessions may run one against the same cluster (watching every
namespace), so the Agent references a Connector that does not exist: a running operator then stops at
reference resolution, rewriting only phase, conditions and observedGeneration and never running the
rollout state machine (which would replace the fake rollout status and consume the intents). Assertions
about the fields it may rewrite compare the plugin's output with what the API holds at that moment.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Kubectl

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PLUGIN = VENV_BIN / "kubectl-agentfleet"
AGENT = "support-bot"
STABLE, CANARY = "5d41402a", "9f86d081"


@pytest.fixture(scope="module")
def crds(kubeconfig: str, kubectl: Kubectl) -> str:
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "crds"), check=True)
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/agents.agentfleet.dev", check=True)
    return kubeconfig


def _manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": AGENT, "namespace": namespace},
        "spec": {
            "model": {"provider": "rules", "name": "rules"},
            "prompt": {"system": "You are the support assistant."},
            # Deliberately missing (see the module docstring): keeps any running operator off the rollout.
            "connectors": [{"name": "no-such-connector"}],
            "replicas": 2,
            "rollout": {
                "strategy": "Canary",
                "canary": {
                    "steps": [{"setWeight": 10}, {"pause": {}}, {"analysis": {}}, {"setWeight": 50}],
                    "analysis": {"prometheusURL": "http://prometheus.monitoring:9090", "failureLimit": 2},
                },
            },
        },
    }


FAKE_STATUS: dict[str, Any] = {
    "observedGeneration": 1,
    "phase": "Paused",
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "CanaryPaused",
            "message": "stable 2/2 ready",
            "lastTransitionTime": "2025-03-04T10:00:00Z",
        }
    ],
    "replicas": 2,
    "readyReplicas": 2,
    "ready": "2/2",
    "revision": {"stable": STABLE, "canary": CANARY},
    "revisionHistory": [CANARY, STABLE, "1a2b3c4d"],
    "rollout": {
        "phase": "Paused",
        "step": 2,
        "weight": 10,
        "actualWeight": 10,
        "message": "step 3/4: 3 inconclusive measurements in a row; paused for a human (promote or abort)",
        "stepStartedAt": "2025-03-04T10:01:00Z",
        "inconclusive": 3,
        "analysis": [
            {
                "time": "2025-03-04T10:02:00Z",
                "metric": "errorRatio",
                "query": "q1",
                "value": "0.0120",
                "stableValue": "0.0100",
                "threshold": "0.05",
                "verdict": "Passed",
            },
            {
                "time": "2025-03-04T10:02:00Z",
                "metric": "latencyP95",
                "query": "q2",
                "value": "",
                "stableValue": "1.1000",
                "threshold": "2",
                "verdict": "Inconclusive",
                "message": "4 canary requests < minRequests 20",
            },
        ],
    },
}


@pytest.fixture
def agent(crds: str, kubectl: Kubectl, namespace: str) -> str:
    kubectl("apply", "-f", "-", stdin=json.dumps(_manifest(namespace)), check=True)
    _patch_status(kubectl, namespace)
    return namespace


def _patch_status(kubectl: Kubectl, namespace: str) -> None:
    kubectl(
        "patch",
        "agt",
        AGENT,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": FAKE_STATUS}),
        check=True,
    )


def _get(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    return json.loads(kubectl("get", "agt", AGENT, "-n", namespace, "-o", "json", check=True).stdout)


def _env(**extra: str) -> dict[str, str]:
    # kubectl finds plugins on PATH: the venv's console script must come first.
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env | extra


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env or _env())


def _plugin(kubeconfig: str, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(PLUGIN), "--kubeconfig", kubeconfig, "-n", namespace, *args])


def _settled(kubectl: Kubectl, namespace: str, run: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the plugin while the Agent holds still: the same resourceVersion before and after, so the
    output can be compared with the object (a foreign operator may write status at any moment)."""
    for _ in range(10):
        before = _get(kubectl, namespace)
        result = run()
        after = _get(kubectl, namespace)
        if before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]:
            return result, after
        _patch_status(kubectl, namespace)
    pytest.fail("the Agent kept changing while the plugin read it")


def _check_status_output(out: str, agent: dict[str, Any], namespace: str) -> None:
    lines = out.splitlines()
    assert lines[0].split() == ["Agent:", f"{namespace}/{AGENT}"]
    status = agent["status"]
    # Phase and Ready may have been rewritten by a foreign operator: they must match the API, whatever it says.
    assert f"Phase:        {status['phase']}" in lines
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert f"Ready:        {ready['status']} ({ready['reason']}): {ready['message']}" in lines
    assert "Replicas:     2/2 ready (spec.replicas 2)" in lines
    assert f"Stable:       {STABLE}" in lines and f"Canary:       {CANARY}" in lines
    assert "Rollout:      Canary, phase Paused" in lines
    assert any(line.startswith("  Step:       3/4 analysis, started 2025-03-04T10:01:00Z (") for line in lines)
    assert "  Weight:     target 10%, actual 10%" in lines
    assert any("paused for a human (promote or abort)" in line for line in lines)
    marked = [line.split() for line in lines if line.lstrip().startswith(">")]
    assert marked == [[">", "3", "analysis", "10%"]]
    rows = [line.split() for line in lines if line.lstrip().startswith("2025-03-04T10:02:00Z")]
    assert [row[3:8] for row in rows] == [
        ["errorRatio", "0.0120", "0.0100", "0.05", "Passed"],
        ["latencyP95", "-", "1.1000", "2", "Inconclusive"],
    ]


def test_status_as_a_program_and_as_a_kubectl_plugin(agent: str, kubeconfig: str, kubectl: Kubectl) -> None:
    namespace = agent
    result, current = _settled(kubectl, namespace, lambda: _plugin(kubeconfig, namespace, "status", AGENT))
    assert result.returncode == 0, result.stderr
    _check_status_output(result.stdout, current, namespace)

    # Through kubectl's plugin discovery; flags after the command, kubeconfig from $KUBECONFIG as kubectl users do.
    result, current = _settled(
        kubectl,
        namespace,
        lambda: _run(["kubectl", "agentfleet", "status", AGENT, "-n", namespace], env=_env(KUBECONFIG=kubeconfig)),
    )
    assert result.returncode == 0, result.stderr
    _check_status_output(result.stdout, current, namespace)


def test_namespace_defaults_to_the_kubeconfig_context(
    agent: str, kubeconfig: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    config["contexts"].append({"name": "in-test-ns", "context": context["context"] | {"namespace": agent}})
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)

    result = _run([str(PLUGIN), "--context", "in-test-ns", "status", AGENT], env=_env(KUBECONFIG=str(path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["Agent:", f"{agent}/{AGENT}"]
    # The current context has no namespace: "default", where the Agent is not.
    result = _run([str(PLUGIN), "status", AGENT], env=_env(KUBECONFIG=str(path)))
    assert result.returncode == 1
    assert result.stderr.strip() == f'error: Agent "{AGENT}" not found in namespace "default"'


def test_intents_set_annotations_only(agent: str, kubeconfig: str, kubectl: Kubectl) -> None:
    namespace = agent
    initial = _get(kubectl, namespace)

    result = _plugin(kubeconfig, namespace, "promote", AGENT, "--full")
    assert result.returncode == 0, result.stderr
    first = _get(kubectl, namespace)["metadata"]["annotations"]["agentfleet.dev/promote"]
    assert first.startswith("full:")
    assert f"annotated: agentfleet.dev/promote={first}" in result.stdout
    assert "acts on this value once" in result.stdout

    # Same command again: a new distinct value, so the operator would act again.
    result = subprocess.run(
        ["kubectl", "agentfleet", "promote", AGENT, "--full", "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(KUBECONFIG=kubeconfig),
    )
    assert result.returncode == 0, result.stderr
    second = _get(kubectl, namespace)["metadata"]["annotations"]["agentfleet.dev/promote"]
    assert second.startswith("full:") and second != first

    result = _plugin(kubeconfig, namespace, "promote", AGENT)
    assert result.returncode == 0, result.stderr
    assert _get(kubectl, namespace)["metadata"]["annotations"]["agentfleet.dev/promote"].startswith("step:")

    for kind in ("abort", "retry"):
        result = _plugin(kubeconfig, namespace, kind, AGENT)
        assert result.returncode == 0, result.stderr
        value = _get(kubectl, namespace)["metadata"]["annotations"][f"agentfleet.dev/{kind}"]
        assert value and ":" not in value and value in result.stdout
    # retry while Paused (not Aborted) is set anyway, with a warning that the operator will ignore it.
    assert "warning: retry applies only to an aborted rollout" in result.stderr

    final = _get(kubectl, namespace)
    # No spec edit: the generation stays, so there is nothing for a GitOps tool to revert.
    assert final["metadata"]["generation"] == initial["metadata"]["generation"]
    assert final["spec"] == initial["spec"]
    assert {k for k in final["metadata"]["annotations"] if k.startswith("agentfleet.dev/")} == {
        "agentfleet.dev/promote",
        "agentfleet.dev/abort",
        "agentfleet.dev/retry",
    }


def test_history_lists_revisions_and_their_config_maps(agent: str, kubeconfig: str, kubectl: Kubectl) -> None:
    namespace = agent
    # A revision ConfigMap as the operator writes it (without the managed-by label, so no operator prunes it).
    for revision, image in (
        (STABLE, "ghcr.io/acme/agentfleet-runtime:0.1.0"),
        (CANARY, "ghcr.io/acme/agentfleet-runtime:0.2.0"),
    ):
        config_map = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "immutable": True,
            "metadata": {
                "name": f"{AGENT}-config-{revision}",
                "namespace": namespace,
                "labels": {"agentfleet.dev/agent": AGENT, "agentfleet.dev/revision": revision},
                "annotations": {"agentfleet.dev/image": image},
            },
            "data": {"config.json": "{}"},
        }
        kubectl("apply", "-f", "-", stdin=json.dumps(config_map), check=True)
    created = json.loads(
        kubectl("get", "cm", f"{AGENT}-config-{CANARY}", "-n", namespace, "-o", "json", check=True).stdout
    )["metadata"]["creationTimestamp"]

    result = _plugin(kubeconfig, namespace, "history", AGENT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Revisions of Agent {namespace}/{AGENT} (newest first):"
    rows = [line.split() for line in lines[2:5]]
    assert rows[0][:5] == [CANARY, "canary", f"{AGENT}-config-{CANARY}", "yes", created]
    assert rows[0][-1] == "ghcr.io/acme/agentfleet-runtime:0.2.0"
    assert rows[1][:4] == [STABLE, "stable", f"{AGENT}-config-{STABLE}", "yes"]
    assert rows[1][-1] == "ghcr.io/acme/agentfleet-runtime:0.1.0"
    assert rows[2] == ["1a2b3c4d", "-", f"{AGENT}-config-1a2b3c4d", "no", "(deleted)", "-", "-"]


def test_errors_and_usage(crds: str, kubeconfig: str, namespace: str) -> None:
    result = _plugin(kubeconfig, namespace, "status", "ghost")
    assert result.returncode == 1
    assert result.stderr.strip() == f'error: Agent "ghost" not found in namespace "{namespace}"'
    result = _plugin(kubeconfig, namespace, "promote", "ghost", "--full")
    assert result.returncode == 1 and "not found" in result.stderr

    result = _run(["kubectl", "agentfleet", "promote"], env=_env(KUBECONFIG=kubeconfig))
    assert result.returncode == 2 and "usage: kubectl agentfleet promote" in result.stderr
    result = _run(["kubectl", "agentfleet", "history", "--help"], env=_env(KUBECONFIG=kubeconfig))
    assert result.returncode == 0 and result.stdout.startswith("usage: kubectl agentfleet history")
