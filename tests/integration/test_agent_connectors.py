"""Agents as tools on the real control plane: an agent Connector (`type: agent`) gets the caller's
pods the target's Service and caller key, whatever order things are created in, and a loop of
agent Connectors is refused on every Agent of the loop while their pods keep running."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import apply, condition, get, ready, rules_agent, secret, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def agent_connector(name: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {"type": "agent", "agentRef": {"name": target}},
    }


def _reason(kubectl: Kubectl, kind: str, name: str, namespace: str) -> tuple[str, str, str] | None:
    obj = get(kubectl, kind, name, namespace)
    ready_cond = condition(obj, "Ready")
    return (ready_cond.get("status", ""), ready_cond.get("reason", ""), ready_cond.get("message", "")) if obj else None


def _refused(kubectl: Kubectl, name: str, namespace: str, reason: str) -> tuple[str, str, str] | None:
    found = _reason(kubectl, "agent", name, namespace)
    return found if found and found[:2] == ("False", reason) else None


def _stable_revision(kubectl: Kubectl, name: str, namespace: str) -> str:
    deployment = get(kubectl, "deployment", name, namespace)
    assert deployment is not None, f"deployment {name} missing"
    return deployment["spec"]["template"]["metadata"]["labels"]["agentfleet.dev/revision"]


def test_an_agent_asking_another_gets_its_service_and_key_in_any_order(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    # The caller first: its target does not exist yet.
    apply(
        kubectl,
        namespace,
        agent_connector("billing-desk", "billing"),
        rules_agent("support-bot", connectors=[{"name": "billing-desk"}]),
    )
    waiting = wait_for("AgentNotFound", lambda: _refused(kubectl, "support-bot", namespace, "AgentNotFound"))
    assert f"Agent billing not found in namespace {namespace}" in waiting[2]
    connector_ready = wait_for(
        "the Connector's AgentNotFound",
        lambda: (r := _reason(kubectl, "connector", "billing-desk", namespace)) and r[1] == "AgentNotFound" and r,
    )
    assert connector_ready[0] == "False"

    # The target appears: the caller and the Connector recover by themselves.
    apply(kubectl, namespace, rules_agent("billing"))
    caller = wait_for("support-bot Ready", lambda: ready(kubectl, "support-bot", namespace), timeout=120)
    assert condition(caller, "ConnectorsReady")["status"] == "True"
    connector = wait_for(
        "the Connector Ready",
        lambda: (r := _reason(kubectl, "connector", "billing-desk", namespace)) and r[0] == "True" and r,
    )
    assert "asks Agent billing" in connector[2] and "ask_billing" in connector[2]

    revision = caller["status"]["revision"]["stable"]
    config_map = get(kubectl, "configmap", f"support-bot-config-{revision}", namespace)
    assert config_map is not None
    (rendered,) = json.loads(config_map["data"]["config.json"])["connectors"]
    assert rendered["type"] == "agent" and rendered["agent"] == "billing"
    assert rendered["endpoint"] == f"http://billing.{namespace}.svc:8080"
    secret_dir = "/var/run/agentfleet/secrets/billing-access"
    assert rendered["auth"] == {"type": "bearer", "secretDir": secret_dir, "tokenFile": f"{secret_dir}/apiKey"}
    assert [tool["name"] for tool in rendered["tools"]] == ["ask_billing"]

    # The pods mount exactly the key they present, read-only, from the target's generated Secret.
    pod = get(kubectl, "deployment", "support-bot", namespace)["spec"]["template"]["spec"]  # type: ignore[index]
    volume = next(v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "billing-access")
    assert volume["secret"]["items"] == [{"key": "apiKey", "path": "apiKey"}]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert mount == {"name": volume["name"], "mountPath": secret_dir, "readOnly": True}
    policy = get(kubectl, "networkpolicy", "support-bot", namespace)
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}  # type: ignore[index]
    assert 8080 in egress_ports

    # A rotated target key is a new revision of the caller.
    kubectl(
        "patch", "secret", "billing-access", "-n", namespace, "--type=merge", "-p",
        json.dumps({"stringData": {"apiKey": "rotated-key"}}),
        check=True,
    )  # fmt: skip
    rolled = wait_for(
        "a new revision after the rotation",
        lambda: (a := ready(kubectl, "support-bot", namespace)) and a["status"]["revision"]["stable"] != revision and a,
    )
    assert _stable_revision(kubectl, "support-bot", namespace) == rolled["status"]["revision"]["stable"]

    # The target takes keys from a Secret of its own: the caller follows, though no Connector changed.
    apply(
        kubectl,
        namespace,
        secret("billing-keys", frontdesk="k-1"),
        rules_agent("billing", access={"apiKeySecretRef": {"name": "billing-keys"}}),
    )

    def presents_new_key() -> Any:
        agent = ready(kubectl, "support-bot", namespace)
        if not agent:
            return None
        config_map = get(kubectl, "configmap", f"support-bot-config-{agent['status']['revision']['stable']}", namespace)
        auth = json.loads(config_map["data"]["config.json"])["connectors"][0]["auth"]  # type: ignore[index]
        return auth["tokenFile"] == "/var/run/agentfleet/secrets/billing-keys/frontdesk" and agent

    wait_for("the caller presenting the target's new key", presents_new_key)


def test_a_loop_is_refused_on_both_agents_and_their_pods_keep_running(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        agent_connector("to-billing", "billing"),
        agent_connector("to-support", "support-bot"),
        rules_agent("billing"),
        rules_agent("support-bot", connectors=[{"name": "to-billing"}]),
    )
    wait_for("support-bot Ready", lambda: ready(kubectl, "support-bot", namespace))
    wait_for("billing Ready", lambda: ready(kubectl, "billing", namespace))
    revisions = {name: _stable_revision(kubectl, name, namespace) for name in ("support-bot", "billing")}

    # billing now asks support-bot back: the loop closes. Both Agents say so, naming it from themselves.
    apply(kubectl, namespace, rules_agent("billing", connectors=[{"name": "to-support"}]))
    billing = wait_for("billing ToolLoop", lambda: _refused(kubectl, "billing", namespace, "ToolLoop"))
    assert "billing → support-bot → billing" in billing[2]
    support = wait_for("support-bot ToolLoop", lambda: _refused(kubectl, "support-bot", namespace, "ToolLoop"))
    assert "support-bot → billing → support-bot" in support[2]
    for name in ("support-bot", "billing"):
        agent = get(kubectl, "agent", name, namespace)
        assert condition(agent, "ConnectorsReady")["reason"] == "ToolLoop"
        assert condition(agent, "Stalled")["status"] == "True"
        # Not rolled forward: the pods of the last good revision keep serving.
        assert _stable_revision(kubectl, name, namespace) == revisions[name]
        assert agent["status"]["phase"] == "Degraded"

    # Breaking the loop lets both recover without touching support-bot.
    apply(kubectl, namespace, rules_agent("billing"))
    wait_for("billing Ready again", lambda: ready(kubectl, "billing", namespace))
    wait_for("support-bot Ready again", lambda: ready(kubectl, "support-bot", namespace))


def test_an_agent_asking_itself_is_refused(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, agent_connector("myself", "echo"), rules_agent("echo", connectors=[{"name": "myself"}]))
    refused = wait_for("echo ToolLoop", lambda: _refused(kubectl, "echo", namespace, "ToolLoop"))
    assert "echo → echo" in refused[2]
    assert get(kubectl, "deployment", "echo", namespace) is None  # never resolved: nothing was rolled out


SAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "agents-as-tools.yaml"


def test_the_agents_as_tools_sample_becomes_ready(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, *[d for d in yaml.safe_load_all(SAMPLE.read_text()) if d])  # apply sets the namespace
    for name in ("billing", "frontdesk"):
        wait_for(f"{name} Ready", lambda name=name: ready(kubectl, name, namespace))
    connector = wait_for(
        "billing-desk Ready",
        lambda: (r := _reason(kubectl, "connector", "billing-desk", namespace)) and r[0] == "True" and r,
    )
    assert connector[2] == "tool ask_billing asks Agent billing"
