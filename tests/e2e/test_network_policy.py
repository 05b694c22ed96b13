"""The Agent's NetworkPolicy enforced for real: kube-router's firewall on the real node drops what it
does not allow, in both directions.

Ingress: the agent is reachable from its own namespace and from the namespace `allowedNamespaces`
names, and not from a third one. Egress: the agent pod reaches the CRM its Connector names and
nothing else, not even the demo model beside it in the same namespace. Each "blocked" is shown
against a control that the same path is otherwise open: the outsider reaches an unrestricted pod,
and a plain pod in the agent's namespace reaches the model the agent may not. kube-router answers a
dropped connection with an ICMP port-unreachable, so a blocked connect fails as "refused" at once;
the controls prove something listens there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from typing import Any

import pytest
import yaml

from tests.e2e.demo import demo_backends
from tests.e2e.traffic import apply, get_json, restricted_namespace, rules_agent, wait_for, wait_ready
from tests.integration.conftest import Kubectl
from tests.unit.samples import load_sample

PORT = 8080
# One TCP connect per target; prints {"host:port": "open" | "<error class>"}.
PROBE = r"""
import json, socket, sys
out = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        out[target] = "open"
    except OSError as exc:
        out[target] = type(exc).__name__
print(json.dumps(out))
"""


def _probe_pod(namespace: str, name: str, image: str) -> dict[str, Any]:
    """A pod that only sleeps, passing restricted Pod Security, to run PROBE in with `kubectl exec`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "nodeSelector": {"type": "real"},
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", "import time; time.sleep(3600)"],
                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def _connect(kubectl: Kubectl, namespace: str, pod: str, *targets: str) -> dict[str, str]:
    result = kubectl("exec", "-n", namespace, pod, "--", "python", "-c", PROBE, *targets, timeout=60)
    assert result.returncode == 0, f"exec in {namespace}/{pod} failed: {result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def _settled(kubectl: Kubectl, namespace: str, pod: str, expected: dict[str, str]) -> dict[str, str]:
    """The probe's answer once it matches `expected` (kube-router applies a policy within seconds of
    seeing it); on timeout the last answer is what the assertion shows."""
    last: dict[str, str] = {}

    def matches() -> bool:
        nonlocal last
        last = _connect(kubectl, namespace, pod, *expected)
        return last == expected

    with suppress(AssertionError):
        wait_for(matches, 60, f"connections from {namespace}/{pod} as the policy says", interval=3)
    return last


@pytest.fixture
def namespaces(kubectl: Kubectl, e2e_namespace: str) -> Iterator[tuple[str, str, str]]:
    """The agent's namespace, the one it allows and one it does not."""
    suffix = uuid.uuid4().hex[:6]
    with ExitStack() as stack:
        allowed = stack.enter_context(restricted_namespace(kubectl, f"e2e-np-allowed-{suffix}"))
        outsider = stack.enter_context(restricted_namespace(kubectl, f"e2e-np-outsider-{suffix}"))
        yield e2e_namespace, allowed, outsider


def test_the_agent_policy_blocks_other_namespaces_and_unnamed_destinations(
    kubectl: Kubectl, namespaces: tuple[str, str, str], images: dict[str, str]
) -> None:
    ns, allowed, outsider = namespaces
    image = images["RUNTIME_IMAGE"]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(demo_backends(ns, image, "np-secret")), check=True)
    connector = load_sample("crm-connector.yaml")
    connector["metadata"]["namespace"] = ns
    connector["spec"]["endpoint"] = f"http://demo-crm.{ns}.svc:{PORT}/api"
    connector["spec"]["auth"]["tokenURL"] = f"http://demo-crm.{ns}.svc:{PORT}/oauth/token"
    apply(kubectl, connector)
    apply(
        kubectl,
        rules_agent(
            "gate",
            ns,
            connectors=[{"name": "crm"}],
            access={"allowedNamespaces": [allowed]},
        ),
    )
    for where in (ns, allowed, outsider):
        apply(kubectl, _probe_pod(where, "probe", image))
    for where in (ns, allowed, outsider):
        kubectl("wait", "--for=condition=Ready", "pod/probe", "-n", where, "--timeout=120s", check=True, timeout=150)
    for deploy in ("demo-llm", "demo-crm"):
        kubectl("rollout", "status", f"deploy/{deploy}", "-n", ns, "--timeout=180s", check=True, timeout=200)
    wait_ready(kubectl, ns, "gate")
    assert get_json(kubectl, "networkpolicy", "gate", "-n", ns)["spec"]["policyTypes"] == ["Ingress", "Egress"]

    agent = f"gate.{ns}.svc:{PORT}"
    model, crm = f"demo-llm.{ns}.svc:{PORT}", f"demo-crm.{ns}.svc:{PORT}"

    # Ingress: the agent's namespace and the allowed one get through, the outsider does not,
    # though it reaches the (unrestricted) demo model in the same namespace.
    assert _settled(kubectl, ns, "probe", {agent: "open"}) == {agent: "open"}
    assert _settled(kubectl, allowed, "probe", {agent: "open"}) == {agent: "open"}
    blocked_in = {agent: "ConnectionRefusedError", model: "open"}
    assert _settled(kubectl, outsider, "probe", blocked_in) == blocked_in

    # Egress: from the agent's own pod, the CRM its Connector names is reachable; the demo model,
    # which no Connector names and the rules agent does not use, is not, though a plain pod of
    # the same namespace reaches it.
    assert _settled(kubectl, ns, "probe", {model: "open"}) == {model: "open"}
    pod = get_json(kubectl, "pods", "-n", ns, "-l", "agentfleet.dev/agent=gate")["items"][0]["metadata"]["name"]
    blocked_out = {crm: "open", model: "ConnectionRefusedError"}
    assert _settled(kubectl, ns, pod, blocked_out) == blocked_out
