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
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import PREFIX, ROOT
from tests.e2e.traffic import (
    TrafficClient,
    access_key,
    apply,
    get_json,
    present_revisions,
    restricted_namespace,
    rules_agent,
    wait_for,
    wait_ready,
)
from tests.integration.conftest import Kubectl

DEMO = ROOT / "manifests" / "samples" / "demo"


@pytest.fixture
def own_namespace(kubectl: Kubectl, crds: None) -> Iterator[str]:
    """A namespace outside the tier's operator: `<prefix>incluster-*` is excluded from its scope.
    The operator under test brings no CRDs (they are installed apart, as in manifests/), so the
    session's are needed even when this test runs first or alone."""
    name = f"{PREFIX}incluster-{uuid.uuid4().hex[:6]}"
    try:
        with restricted_namespace(kubectl, name):
            yield name
    finally:
        for kind in ("clusterrolebinding", "clusterrole"):
            kubectl("delete", kind, f"{name}-agentfleet-operator", "--ignore-not-found")


def render_operator(kubectl: Kubectl, tmp: Path, namespace: str, images: dict[str, str]) -> str:
    """manifests/base/operator as shipped, moved into one namespace: its cluster-scoped RBAC gets a
    name prefix (the shipped one is left as it is for the other operators), its watch is that
    namespace, and it runs the images built here."""
    # kustomize takes only relative paths to other kustomizations.
    base = os.path.relpath(ROOT / "manifests" / "base" / "operator", tmp)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [str(base)], "namespace": namespace, "namePrefix": f"{namespace}-",
        "images": [{"name": "ghcr.io/agentfleet/agentfleet-operator",
                    "newName": images["OPERATOR_IMAGE"].rsplit(":", 1)[0],
                    "newTag": images["OPERATOR_IMAGE"].rsplit(":", 1)[1]}],
        "patches": [
            {"patch": yaml.safe_dump({"$patch": "delete", "apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "agentfleet-system"}})},
            {"target": {"kind": "Deployment"}, "patch": yaml.safe_dump([
                {"op": "replace", "path": "/spec/template/spec/containers/0/args/0",
                 "value": f"--namespace={namespace}"},
                {"op": "replace", "path": "/spec/template/spec/containers/0/env/1",
                 "value": {"name": "AGENTFLEET_RUNTIME_IMAGE", "value": images["RUNTIME_IMAGE"]}},
            ])},
        ],
    }
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return kubectl("kustomize", str(tmp), check=True).stdout


def lease_holder(kubectl: Kubectl, namespace: str) -> str:
    result = kubectl("get", "lease", "-n", namespace, "-o", "json", check=True)
    leases = json.loads(result.stdout)["items"]
    return leases[0]["spec"].get("holderIdentity", "") if leases else ""


def test_operator_runs_in_cluster_with_two_replicas_and_fails_over(
        kubectl: Kubectl, own_namespace: str, images: dict[str, str], tmp_path: Path) -> None:
    ns = own_namespace
    rendered = render_operator(kubectl, tmp_path, ns, images)
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2 and "--leader-elect" in deployment["spec"]["template"]["spec"][
        "containers"][0]["args"], "the shipped Deployment is what runs here"
    kubectl("apply", "--server-side", "-f", "-", stdin=rendered, check=True)
    name = deployment["metadata"]["name"]
    kubectl("rollout", "status", f"deploy/{name}", "-n", ns, "--timeout=180s", check=True, timeout=200)

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
    new_leader = wait_for(lambda: (h := lease_holder(kubectl, ns)) and not h.startswith(leader_pod) and h, 120,
                          "the standby to take the Lease")
    assert not new_leader.startswith(leader_pod)

    apply(kubectl, rules_agent("hello", ns, reply="second"))
    second = wait_ready(kubectl, ns, "hello")["status"]["revision"]["stable"]
    assert second != first
    # Ready comes as the new pod is available; the old one still drains (preStop) a moment longer.
    wait_for(lambda: present_revisions(kubectl, ns, "hello") == {second}, 120, "the old pod gone")
    answered = TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "hello", api_key=key, count=3).run()
    assert answered.replies == {"second": 3}, answered
    # The standby became the leader in its own words, and the old leader's pod is gone.
    new_pod = next(p["metadata"]["name"] for p in get_json(kubectl, "pods", "-n", ns, "-l",
                   "app.kubernetes.io/name=agentfleet")["items"] if new_leader.startswith(p["metadata"]["name"]))
    assert new_pod != leader_pod
    assert f"became the leader ({new_leader})" in kubectl("logs", new_pod, "-n", ns, check=True).stdout


def demo_backends(kubectl: Kubectl, namespace: str, image: str, client_secret: str) -> list[dict]:
    """The samples' demo model and CRM (manifests/samples/demo), moved into the test's namespace."""
    docs = [d for d in yaml.safe_load_all((DEMO / "backends.yaml").read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "Deployment":
            doc["spec"]["template"]["spec"]["containers"][0]["image"] = image
    program = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo-backends", "namespace": namespace},
               "data": {"demo_backends.py": (DEMO / "demo_backends.py").read_text()}}
    secrets = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "crm-creds", "namespace": namespace},
         "stringData": {"clientId": "support-bot", "clientSecret": client_secret}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "llm-key", "namespace": namespace},
         "stringData": {"apiKey": "e2e-llm-key"}},
    ]
    return [program, *secrets, *docs]


def test_rotated_connector_secret_rolls_the_pods_and_the_crm_sees_the_new_credential(
        kubectl: Kubectl, e2e_namespace: str, images: dict[str, str]) -> None:
    ns = e2e_namespace
    crm = f"http://demo-crm.{ns}.svc:8080"
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(demo_backends(kubectl, ns, images["RUNTIME_IMAGE"], "old-1")),
            check=True)
    kubectl("rollout", "status", "deploy/demo-crm", "deploy/demo-llm", "-n", ns, "--timeout=120s", check=True,
            timeout=150)
    connector = {"apiVersion": "agentfleet.dev/v1alpha1", "kind": "Connector",
                 "metadata": {"name": "crm", "namespace": ns},
                 "spec": {"type": "http", "endpoint": f"{crm}/api",
                          "auth": {"type": "oauth2ClientCredentials", "secretRef": {"name": "crm-creds"},
                                   "tokenURL": f"{crm}/oauth/token"},
                          "tools": [{"name": "lookup_customer", "description": "Find a customer by e-mail",
                                     "method": "GET", "path": "/customers",
                                     "parameters": {"type": "object", "properties": {"email": {"type": "string"}},
                                                    "required": ["email"]}}]}}
    agent = {"apiVersion": "agentfleet.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "support", "namespace": ns},
             "spec": {"model": {"provider": "openai-compatible", "name": "gpt-4o-mini",
                                "endpoint": f"http://demo-llm.{ns}.svc:8080/v1",
                                "credentialsSecretRef": {"name": "llm-key", "key": "apiKey"}},
                      "prompt": {"system": "You are a support assistant."},
                      "connectors": [{"name": "crm"}], "replicas": 1,
                      "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}}}
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([connector, agent]), check=True)
    before = wait_ready(kubectl, ns, "support")["status"]["revision"]["stable"]
    secret_hash = get_json(kubectl, "connector", "crm", "-n", ns)["status"]["secretHash"]
    key = access_key(kubectl, ns, "support")
    question = "What is the tier of ada@example.com?"

    def ask() -> dict[str, int]:
        return TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "support", api_key=key, count=2,
                             message=question).run().replies

    assert all('"tier": "gold"' in reply for reply in ask()), "the tool call reached the CRM with the first credential"

    # The CRM side rotates first (it now accepts only the new secret), then the Secret is updated.
    new_secret = "new-2"
    patch = {"data": {"clientSecret": base64.b64encode(new_secret.encode()).decode()}}
    kubectl("patch", "secret", "crm-creds", "-n", ns, "--type=merge", "-p", json.dumps(patch), check=True)
    kubectl("rollout", "restart", "deploy/demo-crm", "-n", ns, check=True)
    kubectl("rollout", "status", "deploy/demo-crm", "-n", ns, "--timeout=120s", check=True, timeout=150)
    # rollout status does not wait for the old CRM pod to exit; until it has, it may still answer.
    wait_for(lambda: len(get_json(kubectl, "pods", "-n", ns, "-l", "app.kubernetes.io/name=demo-crm")["items"]) == 1,
             60, "the old CRM pod gone")

    wait_for(lambda: get_json(kubectl, "connector", "crm", "-n", ns)["status"].get("secretHash") != secret_hash,
             60, "the Connector to see the new Secret")
    after = wait_for(lambda: (r := get_json(kubectl, "agent", "support", "-n", ns)["status"]["revision"]["stable"])
                     != before and r, 120, "a new revision")
    wait_ready(kubectl, ns, "support")
    wait_for(lambda: present_revisions(kubectl, ns, "support") == {after}, 120, "the old pod gone")
    replies = ask()
    assert all('"tier": "gold"' in reply for reply in replies), replies
    # The answer really needed the new credential: the CRM log shows a token issued after the
    # restart and no refused one.
    crm_log = kubectl("logs", "deploy/demo-crm", "-n", ns, check=True).stdout
    assert "POST /oauth/token 200" in crm_log and "POST /oauth/token 401" not in crm_log, crm_log
