"""The namespace roles (manifests/base/operator/namespace-roles.yaml) as Kubernetes hands them out:
ServiceAccounts bound by RoleBinding to the built-in view, edit and admin ClusterRoles get exactly
the agentfleet verbs docs/operations.md documents, through the aggregation controller, and nothing
more. Asked with each ServiceAccount's own token (`kubectl auth can-i` and a SelfSubjectRulesReview).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from tests.integration.operator_harness import install_crds_and_rbac
from tests.integration.test_operator import wait_for as eventually

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
GROUP = "agentfleet.dev"
KINDS = ("agents", "connectors", "statepolicies")
READ = {"get", "list", "watch"}
WRITE = {"create", "update", "patch", "delete", "deletecollection"}

# The documented table (docs/operations.md, "Namespace roles"): (resource, verb) pairs in agentfleet.dev.
VIEW = {(r, v) for r in (*KINDS, *(f"{k}/status" for k in KINDS), "agents/scale") for v in READ}
EDIT = VIEW | {(r, v) for r in KINDS for v in WRITE} | {("agents/scale", "update"), ("agents/scale", "patch")}
ADMIN = EDIT
EXPECTED = {"view": VIEW, "edit": EDIT, "admin": ADMIN}


def granted(kubectl: Kubectl, kubeconfig: str, namespace: str) -> set[tuple[str, str]]:
    """Every (resource, verb) in agentfleet.dev the caller holds in the namespace, as the API server's
    authorizer lists them (SelfSubjectRulesReview); a wildcard would show up as '*' and fail."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    result = kubectl(
        "create",
        "--validate=false",
        "-f",
        "-",
        "-o",
        "json",
        stdin=json.dumps(review),
        as_kubeconfig=kubeconfig,
        check=True,
    )
    status = json.loads(result.stdout)["status"]
    assert not status.get("incomplete"), status
    pairs: set[tuple[str, str]] = set()
    for rule in status["resourceRules"]:
        if GROUP in rule["apiGroups"] or "*" in rule["apiGroups"]:
            assert not rule.get("resourceNames"), rule
            pairs |= {(r, v) for r in rule["resources"] for v in rule["verbs"]}
    return pairs


@pytest.fixture
def bound(kubectl: Kubectl, namespace: str, serviceaccount_kubeconfig: Callable[[str, str], str]) -> dict[str, str]:
    """role -> kubeconfig of a ServiceAccount bound to the built-in role of that name in the namespace."""
    install_crds_and_rbac(kubectl)
    configs = {}
    for role in EXPECTED:
        kubectl("create", "serviceaccount", role, "-n", namespace, check=True)
        kubectl(
            "create", "rolebinding", role, f"--clusterrole={role}", f"--serviceaccount={namespace}:{role}",
            "-n", namespace, check=True,
        )  # fmt: skip
        configs[role] = serviceaccount_kubeconfig(namespace, role)
    return configs


def test_the_built_in_roles_grant_exactly_the_documented_agentfleet_verbs(
    kubectl: Kubectl, namespace: str, bound: dict[str, str]
) -> None:
    for role, expected in EXPECTED.items():
        # The RoleBinding and the aggregation controller's merge land shortly after they are written.
        eventually(
            f"the built-in {role} role to carry the agentfleet-{role} rules",
            lambda: granted(kubectl, bound[role], namespace) == expected,  # noqa: B023 (called at once)
            timeout=30,
        )
        extra = granted(kubectl, bound[role], namespace) - expected
        missing = expected - granted(kubectl, bound[role], namespace)
        assert not extra and not missing, f"{role}: extra {sorted(extra)}, missing {sorted(missing)}"


def can_i(kubectl: Kubectl, kubeconfig: str, namespace: str, verb: str, resource: str) -> bool:
    resource, _, sub = resource.partition("/")
    extra = [f"--subresource={sub}"] if sub else []
    answer = kubectl("auth", "can-i", verb, f"{resource}.{GROUP}", *extra, "-n", namespace, as_kubeconfig=kubeconfig)
    assert answer.stdout.strip() in {"yes", "no"}, answer.stderr
    return answer.stdout.strip() == "yes"


# Headline answers, asked one by one (SelfSubjectAccessReview) beside the full rule lists above.
CAN_I = {
    "view": [
        ("get", "agents", True),
        ("watch", "statepolicies", True),
        ("get", "agents/scale", True),
        ("create", "agents", False),
        ("patch", "agents", False),  # no rollout intents for viewers
        ("update", "agents/scale", False),
        ("delete", "connectors", False),
    ],
    "edit": [
        ("create", "connectors", True),
        ("patch", "agents", True),  # the rollout intent annotations
        ("update", "agents/scale", True),
        ("delete", "statepolicies", True),
        ("patch", "agents/status", False),  # status is the operator's
        ("update", "connectors/status", False),
    ],
    "admin": [
        ("patch", "agents", True),
        ("deletecollection", "agents", True),
        ("patch", "statepolicies/status", False),
        ("update", "agents/finalizers", False),
    ],
}


@pytest.mark.parametrize("role", list(CAN_I))
def test_can_i_as_each_bound_service_account(
    kubectl: Kubectl, namespace: str, bound: dict[str, str], role: str
) -> None:
    eventually(
        f"the built-in {role} role to carry the agentfleet-{role} rules",
        lambda: can_i(kubectl, bound[role], namespace, "get", "agents"),
        timeout=30,
    )
    answers = {
        (verb, resource): can_i(kubectl, bound[role], namespace, verb, resource) for verb, resource, _ in CAN_I[role]
    }
    assert answers == {(verb, resource): allowed for verb, resource, allowed in CAN_I[role]}, role
