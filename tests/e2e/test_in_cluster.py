"""The operator's own life in the cluster, and a Connector's credential rotated under running agents.

- The operator runs from its image as the shipped manifests deploy it (two replicas, Lease leader
  election, the shipped ClusterRole), here scoped to the test's namespace; it reconciles an Agent,
  and after its leader pod is deleted the standby takes the Lease and reconciles the next change.
- Rotating a Connector's Secret rolls the agent's pods, and the new pods call the CRM with the new
  credential: the CRM (the samples' demo stand-in, OAuth2 client credentials) is restarted with the
  new secret, so only pods holding the new one get a token.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from tests.e2e.demo import demo_backends
from tests.e2e.in_cluster import deploy_operator, lease_holder
from tests.e2e.traffic import (
    TrafficClient,
    access_key,
    apply,
    get_json,
    present_revisions,
    rules_agent,
    wait_for,
    wait_ready,
)
from tests.integration.conftest import Kubectl


def test_operator_runs_in_cluster_with_two_replicas_and_fails_over(
    kubectl: Kubectl, own_namespace: str, images: dict[str, str], tmp_path: Path
) -> None:
    ns = own_namespace
    deployment = deploy_operator(kubectl, tmp_path, ns, images)
    assert (
        deployment["spec"]["replicas"] == 2
        and "--leader-elect" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    ), "the shipped Deployment is what runs here"

    apply(kubectl, rules_agent("hello", ns, reply="first"))
    first = wait_ready(kubectl, ns, "hello")["status"]["revision"]["stable"]
    key = access_key(kubectl, ns, "hello")
    answered = TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "hello", api_key=key, count=3).run()
    assert answered.replies == {"first": 3}, answered

    leader = wait_for(lambda: lease_holder(kubectl, ns), 60, "a Lease holder")
    pods = get_json(kubectl, "pods", "-n", ns, "-l", "app.kubernetes.io/name=agentfleet")["items"]
    assert len(pods) == 2
    leader_pod = next(p["metadata"]["name"] for p in pods if leader.startswith(p["metadata"]["name"]))
    kubectl("delete", "pod", leader_pod, "-n", ns, "--wait=false", check=True)
    new_leader = wait_for(
        lambda: (h := lease_holder(kubectl, ns)) and not h.startswith(leader_pod) and h,
        120,
        "the standby to take the Lease",
    )
    assert not new_leader.startswith(leader_pod)

    apply(kubectl, rules_agent("hello", ns, reply="second"))
    second = wait_ready(kubectl, ns, "hello")["status"]["revision"]["stable"]
    assert second != first
    # Ready comes as the new pod is available; the old one still drains (preStop) a moment longer.
    wait_for(lambda: present_revisions(kubectl, ns, "hello") == {second}, 120, "the old pod gone")
    answered = TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "hello", api_key=key, count=3).run()
    assert answered.replies == {"second": 3}, answered
    # The standby became the leader in its own words, and the old leader's pod is gone.
    new_pod = next(
        p["metadata"]["name"]
        for p in get_json(kubectl, "pods", "-n", ns, "-l", "app.kubernetes.io/name=agentfleet")["items"]
        if new_leader.startswith(p["metadata"]["name"])
    )
    assert new_pod != leader_pod
    assert f"became the leader ({new_leader})" in kubectl("logs", new_pod, "-n", ns, check=True).stdout


def test_rotated_connector_secret_rolls_the_pods_and_the_crm_sees_the_new_credential(
    kubectl: Kubectl, e2e_namespace: str, images: dict[str, str]
) -> None:
    ns = e2e_namespace
    crm = f"http://demo-crm.{ns}.svc:8080"
    kubectl(
        "apply", "-f", "-", stdin=yaml.safe_dump_all(demo_backends(ns, images["RUNTIME_IMAGE"], "old-1")), check=True
    )
    kubectl(
        "rollout", "status", "deploy/demo-crm", "deploy/demo-llm", "-n", ns, "--timeout=120s", check=True, timeout=150
    )
    connector = {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "crm", "namespace": ns},
        "spec": {
            "type": "http",
            "endpoint": f"{crm}/api",
            "auth": {
                "type": "oauth2ClientCredentials",
                "secretRef": {"name": "crm-creds"},
                "tokenURL": f"{crm}/oauth/token",
            },
            "tools": [
                {
                    "name": "lookup_customer",
                    "description": "Find a customer by e-mail",
                    "method": "GET",
                    "path": "/customers",
                    "parameters": {
                        "type": "object",
                        "properties": {"email": {"type": "string"}},
                        "required": ["email"],
                    },
                }
            ],
        },
    }
    agent = {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "support", "namespace": ns},
        "spec": {
            "model": {
                "provider": "openai-compatible",
                "name": "gpt-4o-mini",
                "endpoint": f"http://demo-llm.{ns}.svc:8080/v1",
                "credentialsSecretRef": {"name": "llm-key", "key": "apiKey"},
            },
            "prompt": {"system": "You are a support assistant."},
            "connectors": [{"name": "crm"}],
            "replicas": 1,
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        },
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([connector, agent]), check=True)
    before = wait_ready(kubectl, ns, "support")["status"]["revision"]["stable"]
    secret_hash = get_json(kubectl, "connector", "crm", "-n", ns)["status"]["secretHash"]
    key = access_key(kubectl, ns, "support")
    question = "What is the tier of ada@example.com?"

    def ask() -> dict[str, int]:
        return (
            TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "support", api_key=key, count=2, message=question)
            .run()
            .replies
        )

    assert all('"tier": "gold"' in reply for reply in ask()), "the tool call reached the CRM with the first credential"

    # The CRM side rotates first (it now accepts only the new secret), then the Secret is updated.
    new_secret = "new-2"
    patch = {"data": {"clientSecret": base64.b64encode(new_secret.encode()).decode()}}
    kubectl("patch", "secret", "crm-creds", "-n", ns, "--type=merge", "-p", json.dumps(patch), check=True)
    kubectl("rollout", "restart", "deploy/demo-crm", "-n", ns, check=True)
    kubectl("rollout", "status", "deploy/demo-crm", "-n", ns, "--timeout=120s", check=True, timeout=150)
    # rollout status does not wait for the old CRM pod to exit; until it has, it may still answer.
    wait_for(
        lambda: len(get_json(kubectl, "pods", "-n", ns, "-l", "app.kubernetes.io/name=demo-crm")["items"]) == 1,
        60,
        "the old CRM pod gone",
    )

    wait_for(
        lambda: get_json(kubectl, "connector", "crm", "-n", ns)["status"].get("secretHash") != secret_hash,
        60,
        "the Connector to see the new Secret",
    )
    after = wait_for(
        lambda: (r := get_json(kubectl, "agent", "support", "-n", ns)["status"]["revision"]["stable"]) != before and r,
        120,
        "a new revision",
    )
    wait_ready(kubectl, ns, "support")
    wait_for(lambda: present_revisions(kubectl, ns, "support") == {after}, 120, "the old pod gone")
    replies = ask()
    assert all('"tier": "gold"' in reply for reply in replies), replies
    # The answer really needed the new credential: the CRM log shows a token issued after the
    # restart and no refused one.
    crm_log = kubectl("logs", "deploy/demo-crm", "-n", ns, check=True).stdout
    assert "POST /oauth/token 200" in crm_log and "POST /oauth/token 401" not in crm_log, crm_log
