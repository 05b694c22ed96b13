"""An Agent's labels never reach its children, Argo CD's tracking label least of all.

Argo CD (label tracking) marks what an Application owns with `app.kubernetes.io/instance: <app>`; a
child carrying the parent's value would be claimed by the Application and pruned as not in Git. The
builders never see the parent's labels (tests/unit/test_builders.py spells out the exact set); this
test shows it on the cluster, for every child the operator makes, pods included.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import apply, get, ready, rules_agent, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
APP = "team-support-apps"  # an Argo CD Application name, unlike any name the operator gives
PARENT_LABELS = {"app.kubernetes.io/instance": APP, "team": "support", "cost-center": "cc-42"}
CHILD_KINDS = "serviceaccounts,configmaps,secrets,deployments,services,poddisruptionbudgets,networkpolicies,pods"


def test_children_carry_none_of_the_agents_labels(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    agent = rules_agent("bot", replicas=2)
    agent["metadata"]["labels"] = dict(PARENT_LABELS)
    apply(kubectl, namespace, agent)
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    uid = get(kubectl, "agent", "bot", namespace)["metadata"]["uid"]
    wait_for(
        "2 pods",
        lambda: (
            len(
                json.loads(
                    kubectl(
                        "get", "pods", "-n", namespace, "-l", "agentfleet.dev/agent=bot", "-o", "json", check=True
                    ).stdout
                )["items"]
            )
            == 2
        ),
    )

    items = json.loads(kubectl("get", CHILD_KINDS, "-n", namespace, "-o", "json", check=True).stdout)["items"]
    # Children by ownership, not by our own label: a child that lost the label must still be checked.
    deployments = {
        i["metadata"]["uid"]
        for i in items
        if i["kind"] == "Deployment" and any(r["uid"] == uid for r in i["metadata"].get("ownerReferences", []))
    }
    replica_sets = json.loads(kubectl("get", "replicasets", "-n", namespace, "-o", "json", check=True).stdout)["items"]
    owned_sets = {
        r["metadata"]["uid"]
        for r in replica_sets
        if any(o["uid"] in deployments for o in r["metadata"].get("ownerReferences", []))
    }
    owners = {uid} | owned_sets
    children = [i for i in items if any(r["uid"] in owners for r in i["metadata"].get("ownerReferences", []))]
    kinds = {c["kind"] for c in children}
    assert {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Pod",
    } <= kinds, kinds

    for child in children:
        where = f"{child['kind']}/{child['metadata']['name']}"
        labelled = [child["metadata"].get("labels") or {}]
        if child["kind"] == "Deployment":
            labelled.append(child["spec"]["template"]["metadata"].get("labels") or {})
        for labels in labelled:
            copied = {k: v for k, v in labels.items() if PARENT_LABELS.get(k) == v or k in ("team", "cost-center")}
            assert not copied, f"{where} carries the Agent's labels {copied}"
            # Any value there is a valid Application name, so the operator leaves the label to users.
            assert "app.kubernetes.io/instance" not in labels, f"{where}: {labels}"
