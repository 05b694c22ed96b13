"""Fixtures for the end-to-end tier: Agents whose pods run for real on the local cluster's real node.

The cluster is the one `hack/cluster.sh up` starts (its default .cluster/ has a real node beside the
kwok nodes: containerd, kubelet, kube-proxy, CoreDNS, metrics-server; docs/local-cluster.md). Pods
run the images hack/images.sh builds from the project's Dockerfile; traffic goes through real
Services from a client pod in the cluster. The tier's namespaces are `e2e-*`, reconciled only by
this tier's operator (the integration tier's operator leaves them alone), which runs as a local
process under the shipped RBAC with the locally built runtime and Redis images as its defaults.

Like the integration tier: without a real node the tests skip with the reason, except under CI=true,
where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.traffic import restricted_namespace
from tests.integration.conftest import (  # noqa: F401  (fixtures shared with the integration tier)
    Kubectl,
    kubeconfig,
    session_serviceaccount_kubeconfig,
)
from tests.integration.conftest import kubectl as kubectl
from tests.integration.operator_harness import OperatorProcess, install_crds_and_rbac

ROOT = Path(__file__).resolve().parents[2]
NODE = "agentfleet-node"
# The tier's namespaces share this prefix and its operator serves exactly them. Two runs of the tier
# at once on one cluster must use different prefixes (AGENTFLEET_E2E_PREFIX), or their operators
# would both reconcile every Agent. The integration tier's operator leaves every e2?- prefix alone;
# this tier's own operator leaves <prefix>incluster-* to the in-cluster operator test_in_cluster.py deploys.
PREFIX = os.environ.get("AGENTFLEET_E2E_PREFIX", "e2e-")
# A cold image build takes minutes; a warm one about a second.
IMAGES_TIMEOUT = 1800


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"real node unavailable: {reason}", pytrace=False)
    pytest.skip(f"real node unavailable: {reason}")


def _cluster_env() -> dict[str, str]:
    env: dict[str, str] = {}
    path = ROOT / ".cluster" / "cluster.env"
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = value.strip("'\"")
    return env


def node_dns_cidrs(kubectl: Kubectl) -> str:
    """AGENTFLEET_DNS_CIDRS for this cluster: the real node's CoreDNS is a process on the node (its
    kubelet's clusterDNS is the node's address), not a kube-dns pod, so the Agents' NetworkPolicies
    must allow DNS to that address."""
    address = kubectl(
        "get", "node", NODE, "-o", "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}", check=True
    ).stdout.strip()
    return f"{address}/32"


@pytest.fixture(scope="session")
def images(kubectl: Kubectl) -> dict[str, str]:
    """The locally built image references (NAME_IMAGE -> reference), built and imported into the
    real node's containerd if the sources changed since the cluster started."""
    ready = kubectl("get", "node", NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
    if ready.returncode != 0 or ready.stdout.strip() != "True":
        _unavailable(f"node {NODE} is not Ready ({ready.stderr.strip() or ready.stdout.strip() or 'absent'})")
    socket = _cluster_env().get("CONTAINERD_SOCK", "")
    if not socket:
        _unavailable(".cluster/cluster.env records no containerd socket")
    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "images.sh"), "import", socket],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=IMAGES_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        _unavailable(f"hack/images.sh import failed:\n{result.stderr[-3000:]}")
    tags = subprocess.run(
        ["bash", str(ROOT / "hack" / "images.sh"), "tags"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in tags.split())


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> None:
    """The project's CRDs Established and the operator's RBAC in place, once per session."""
    install_crds_and_rbac(kubectl)


@pytest.fixture(scope="session")
def e2e_operator(
    kubectl: Kubectl,
    images: dict[str, str],
    crds: None,
    session_serviceaccount_kubeconfig: Callable[[str, str], str],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    config = session_serviceaccount_kubeconfig("agentfleet-system", "agentfleet-operator")
    log = tmp_path_factory.mktemp("e2e-operator") / "operator.log"
    # The operator reports ready once its indexes saw a first event; scoped to a pattern no
    # namespace matches yet it never would (noted as an operator limitation), so one namespace
    # of the pattern exists for the whole session.
    anchor = f"{PREFIX}session-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", anchor, check=True)
    process = OperatorProcess(
        config,
        log,
        scope=(f"--namespace={PREFIX}*,!{PREFIX}incluster-*",),
        env={
            "AGENTFLEET_RUNTIME_IMAGE": images["RUNTIME_IMAGE"],
            "AGENTFLEET_REDIS_IMAGE": images["REDIS_IMAGE"],
            "AGENTFLEET_DNS_CIDRS": node_dns_cidrs(kubectl),
        },
    ).start()
    yield process
    process.stop()
    kubectl("delete", "namespace", anchor, "--wait=false")


@pytest.fixture
def e2e_namespace(kubectl: Kubectl, e2e_operator: OperatorProcess) -> Iterator[str]:
    """A fresh namespace whose pods run on the real node, enforcing restricted Pod Security."""
    with restricted_namespace(kubectl, f"{PREFIX}{uuid.uuid4().hex[:8]}") as name:
        yield name


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
