"""An Agent's NetworkPolicy egress on the real control plane: a Connector naming a Service of the
cluster gets the pods of that Service's selector on its target port, the policy follows the Service
when it appears later or changes its selector or port, and an outside host without CIDRs is
reported on the Agent and the Connector (EgressReady) without making either of them not Ready.

Enforcement itself (a blocked connection) needs a network plugin on a real node: tests/e2e."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import apply, condition, get, ready, rules_agent, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def http_connector(name: str, endpoint: str, **more: Any) -> dict[str, Any]:
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {"type": "http", "endpoint": endpoint, "tools": [{"name": "lookup", "path": "/c"}], **more},
    }


def service(name: str, selector: dict[str, str], port: int, target: int | str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": target}]},
    }


def egress_rules(kubectl: Kubectl, name: str, namespace: str) -> list[dict[str, Any]] | None:
    policy = get(kubectl, "networkpolicy", name, namespace)
    return policy["spec"].get("egress") if policy else None


def events(kubectl: Kubectl, namespace: str, name: str, reason: str) -> list[dict[str, Any]]:
    listing = kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name},reason={reason}",
        "-o", "json", check=True,
    )  # fmt: skip
    return json.loads(listing.stdout)["items"]


def pods_rule(namespace: str, labels: dict[str, str], port: int | str) -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "podSelector": {"matchLabels": labels},
            }
        ],
        "ports": [{"protocol": "TCP", "port": port}],
    }


def test_the_policy_follows_the_service_a_connector_names(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    # The Agent first: its Connector names a Service that does not exist yet.
    apply(
        kubectl,
        namespace,
        http_connector("crm", f"http://crm.{namespace}.svc:8080/api"),
        rules_agent("bot", connectors=[{"name": "crm"}]),
    )
    agent = wait_for("bot Ready", lambda: ready(kubectl, "bot", namespace), timeout=120)
    egress = condition(agent, "EgressReady")
    assert (egress["status"], egress["reason"]) == ("False", "EgressServiceNotFound"), egress
    assert f"Service crm in namespace {namespace} not found" in egress["message"]
    assert egress_rules(kubectl, "bot", namespace) == [DNS_RULE]  # DNS, nothing else
    connector_egress = wait_for(
        "the Connector's EgressReady",
        lambda: condition(get(kubectl, "connector", "crm", namespace), "EgressReady") or None,
    )
    assert connector_egress["reason"] == "EgressServiceNotFound"
    assert condition(get(kubectl, "connector", "crm", namespace), "Ready")["status"] == "True"

    # The Service appears: the pods of its selector, on its target port (named).
    apply(kubectl, namespace, service("crm", {"app": "crm"}, 8080, "web"))
    expected = [DNS_RULE, pods_rule(namespace, {"app": "crm"}, "web")]
    wait_for("egress to the Service's pods", lambda: egress_rules(kubectl, "bot", namespace) == expected)
    wait_for(
        "EgressReady True",
        lambda: condition(get(kubectl, "agent", "bot", namespace), "EgressReady").get("status") == "True",
    )
    wait_for(
        "the Connector's EgressReady True",
        lambda: condition(get(kubectl, "connector", "crm", namespace), "EgressReady").get("status") == "True",
    )

    # Another selector and a numbered target port: the policy follows, and only that rule changes.
    apply(kubectl, namespace, service("crm", {"app": "crm", "tier": "api"}, 8080, 9090))
    expected = [DNS_RULE, pods_rule(namespace, {"app": "crm", "tier": "api"}, 9090)]
    wait_for("egress to the new selector", lambda: egress_rules(kubectl, "bot", namespace) == expected)

    # The egress is the NetworkPolicy's business: the pods run the same revision throughout.
    after = get(kubectl, "agent", "bot", namespace)
    assert after["status"]["revision"]["stable"] == agent["status"]["revision"]["stable"]


def test_an_outside_host_is_allowed_at_its_cidrs_and_reported_without_them(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        http_connector("crm", "https://crm.example.com/api"),
        rules_agent("bot", connectors=[{"name": "crm"}]),
    )
    agent = wait_for("bot Ready", lambda: ready(kubectl, "bot", namespace), timeout=120)
    egress = condition(agent, "EgressReady")
    assert (egress["status"], egress["reason"]) == ("False", "EgressCIDRsMissing"), egress
    assert "crm.example.com:443" in egress["message"] and "spec.egress of Connector crm" in egress["message"]
    assert agent["status"]["phase"] == "Ready"  # told, not held against the Agent
    (event,) = wait_for("one Warning Event", lambda: events(kubectl, namespace, "bot", "EgressCIDRsMissing"))
    assert event["type"] == "Warning" and "crm.example.com" in event["message"]
    connector = get(kubectl, "connector", "crm", namespace)
    assert condition(connector, "EgressReady")["reason"] == "EgressCIDRsMissing"
    assert condition(connector, "Ready")["status"] == "True"

    # The CIDRs given: the policy allows them on the endpoint's port, and the gap is gone.
    apply(kubectl, namespace, http_connector("crm", "https://crm.example.com/api", egress=["203.0.113.0/24"]))
    cidrs = {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    expected = [DNS_RULE, cidrs]
    wait_for("egress to the CIDRs", lambda: egress_rules(kubectl, "bot", namespace) == expected)
    wait_for(
        "EgressReady True",
        lambda: condition(get(kubectl, "agent", "bot", namespace), "EgressReady").get("reason") == "EgressAllowed",
    )
