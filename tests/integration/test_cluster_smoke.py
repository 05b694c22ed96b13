"""The local control plane is a real Kubernetes: controllers, scheduling, admission, RBAC with
ServiceAccount tokens, and garbage collection all work. If one of these fails, fix the cluster
(hack/cluster.sh) before reading anything into other integration tests."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

Kubectl = Callable[..., subprocess.CompletedProcess[str]]  # the `kubectl` fixture (conftest.py)

# A bound on waiting, not an expectation: a healthy cluster converges in seconds.
DEADLINE_SECONDS = 120


def eventually(what: str, probe: Callable[[], Any]) -> Any:
    """Call probe until it returns something truthy; fail after DEADLINE_SECONDS."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}; last observation: {last!r}")


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    return json.loads(kubectl("get", *args, "-o", "json", check=True).stdout)


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: smoke
spec:
  replicas: 2
  selector:
    matchLabels: {app: smoke}
  template:
    metadata:
      labels: {app: smoke}
    spec:
      # The test namespaces enforce the restricted Pod Security Standard.
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
"""


def test_deployment_pods_are_scheduled_and_become_ready(kubectl: Kubectl, namespace: str) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=DEPLOYMENT, check=True)

    def ready_pods() -> list[dict[str, Any]]:
        pods = get_json(kubectl, "pods", "-n", namespace, "-l", "app=smoke")["items"]
        ready = [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]
        return ready if len(ready) == 2 else []

    pods = eventually("2 Running/Ready pods", ready_pods)
    # Bound by the scheduler to the kwok fake nodes.
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)
    eventually(
        "the Deployment to report 2 ready replicas",
        lambda: get_json(kubectl, "deployment", "smoke", "-n", namespace)["status"].get("readyReplicas") == 2,
    )


def test_admission_refuses_objects_in_a_missing_namespace(kubectl: Kubectl) -> None:
    result = kubectl("create", "configmap", "x", "-n", "no-such-ns")
    assert result.returncode != 0
    assert 'namespaces "no-such-ns" not found' in result.stderr


def test_rbac_applies_to_a_serviceaccount_token(
    kubectl: Kubectl, namespace: str, serviceaccount_kubeconfig: Callable[[str, str], str]
) -> None:
    kubectl("create", "serviceaccount", "reader", "-n", namespace, check=True)
    as_reader = serviceaccount_kubeconfig(namespace, "reader")

    whoami = kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", as_kubeconfig=as_reader)
    assert whoami.stdout == f"system:serviceaccount:{namespace}:reader", whoami.stderr

    denied = kubectl("get", "pods", "-n", namespace, as_kubeconfig=as_reader)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower() and f"system:serviceaccount:{namespace}:reader" in denied.stderr

    kubectl("create", "role", "pod-reader", "--verb=list", "--resource=pods", "-n", namespace, check=True)
    kubectl(
        "create", "rolebinding", "reader-reads-pods", "--role=pod-reader",
        f"--serviceaccount={namespace}:reader", "-n", namespace, check=True,
    )  # fmt: skip
    # The RBAC authorizer reads Roles through an informer, so the grant lands shortly after.
    eventually(
        "the RoleBinding to take effect",
        lambda: (
            kubectl("auth", "can-i", "list", "pods", "-n", namespace, as_kubeconfig=as_reader).stdout.strip() == "yes"
        ),
    )
    kubectl("get", "pods", "-n", namespace, as_kubeconfig=as_reader, check=True)
    # Only what was granted: still no listing in another namespace, and no writes.
    assert kubectl("get", "pods", "-n", "default", as_kubeconfig=as_reader).returncode != 0
    assert kubectl("auth", "can-i", "delete", "pods", "-n", namespace, as_kubeconfig=as_reader).stdout.strip() == "no"


def test_server_is_the_pinned_kubernetes_version(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json", check=True).stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.33.12"


def test_garbage_collector_deletes_dependents_of_a_deleted_owner(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "owner", "-n", namespace, check=True)
    owner_uid = get_json(kubectl, "configmap", "owner", "-n", namespace)["metadata"]["uid"]
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "namespace": namespace,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}],
        },
        "data": {"k": "v"},
    }
    kubectl("create", "-f", "-", stdin=json.dumps(dependent), check=True)
    kubectl("delete", "configmap", "owner", "-n", namespace, "--wait=false", check=True)

    def dependent_gone() -> bool:
        result = kubectl("get", "configmap", "dependent", "-n", namespace)
        return result.returncode != 0 and "NotFound" in result.stderr

    eventually("the garbage collector to delete the dependent ConfigMap", dependent_gone)
