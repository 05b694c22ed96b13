"""Fixtures for tests against a real Kubernetes control plane.

The cluster is the one `hack/cluster.sh up` starts (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok as local processes; see docs/local-cluster.md). It is left running after the
session so the next run reuses it in well under a second; `hack/cluster.sh down` (or
`make cluster-down`) stops it.

To run against another cluster instead (kind, a real cluster), set KUBECONFIG to its kubeconfig.

When the control plane cannot be built or started, tests that need it are skipped with the reason,
except under CI=true, where that is a failure: CI must not go green by skipping the real tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = ROOT / "hack" / "cluster.sh"
LOCAL_KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
# A cold build of the control plane from Go modules takes minutes; a cached start takes seconds.
CLUSTER_UP_TIMEOUT = int(os.environ.get("AGENTFLEET_CLUSTER_UP_TIMEOUT", "3600"))

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

# This tier's pods are kwok's: the tests here create many Agents and check what the operator
# writes, not what a container does (tests/e2e runs pods for real). Beside the real node the fake
# nodes are tainted; the API server's PodNodeSelector and PodTolerationRestriction admission
# plugins give every pod of a namespace so annotated the fake nodes' selector and toleration.
KWOK_NAMESPACE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": "type=kwok",
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps(
        [{"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"}]
    ),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees every collected item, not only this directory's: mark just ours.
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"local control plane unavailable: {reason}", pytrace=False)
    pytest.skip(f"local control plane unavailable: {reason}")


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """Path of an admin kubeconfig for a running cluster."""
    existing = os.environ.get("KUBECONFIG")
    # Any cluster KUBECONFIG names (kind, a real cluster) is used as is; the local one is (re)started.
    if existing and Path(existing).resolve() != LOCAL_KUBECONFIG.resolve():
        return existing
    if shutil.which("kubectl") is None:
        _unavailable("kubectl is not on PATH")
    try:
        # Capturing through pipes is safe only because the script gives the components it leaves
        # running their own stdio (log files under .cluster/logs); an inherited pipe would make
        # this call wait for the cluster to exit.
        result = subprocess.run(
            ["bash", str(CLUSTER_SCRIPT), "up"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLUSTER_UP_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"`hack/cluster.sh up` did not finish within {CLUSTER_UP_TIMEOUT}s")
    except OSError as exc:
        _unavailable(f"could not run hack/cluster.sh: {exc}")
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-40:])
        _unavailable(f"`hack/cluster.sh up` exited with {result.returncode}:\n{tail}")
    return str(LOCAL_KUBECONFIG)


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Kubectl:
    """Run the real kubectl against the test cluster.

    kubectl("get", "pods", "-n", ns) returns the CompletedProcess (text, captured). With
    check=True a non-zero exit fails the test showing stderr. stdin= feeds a manifest to `-f -`;
    as_kubeconfig= acts as someone else (see serviceaccount_kubeconfig).
    """

    def run(
        *args: str,
        check: bool = False,
        stdin: str | None = None,
        timeout: float = 120,
        as_kubeconfig: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", f"--kubeconfig={as_kubeconfig or kubeconfig}", *args]
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(cmd)} exited with {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}",
                pytrace=False,
            )
        return result

    return run


@contextmanager
def fresh_namespace(kubectl: Kubectl, prefix: str) -> Iterator[str]:
    """A fresh namespace `<prefix><hex>` enforcing the restricted Pod Security Standard; deleted
    afterwards without waiting for it to go."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    # Restricted Pod Security is enforced, so any agent or Redis pod the operator makes that breaks
    # it is refused by the real admission plugin and the test sees it.
    namespace_doc = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
            "annotations": KWOK_NAMESPACE_ANNOTATIONS,
        },
    }
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(namespace_doc), check=True)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, reconciled by the session operator."""
    with fresh_namespace(kubectl, "it-") as name:
        yield name


# Tests that run an operator of their own for one namespace take one of these: the session operator
# leaves them alone (SESSION_OPERATOR_SCOPE), or the two would reconcile the same Agents.
ISOLATED_PREFIX = "iso-"


@pytest.fixture
def isolated_namespace(kubectl: Kubectl) -> Iterator[str]:
    with fresh_namespace(kubectl, ISOLATED_PREFIX) as name:
        yield name


@pytest.fixture
def serviceaccount_kubeconfig(kubeconfig: str, kubectl: Kubectl, tmp_path: Path) -> Callable[[str, str], str]:
    """serviceaccount_kubeconfig(namespace, name) -> path of a kubeconfig that acts as that
    ServiceAccount, with a token minted through the TokenRequest API (`kubectl create token`).

    The file carries the token only: the admin kubeconfig's client certificate must not be reused,
    because the API server authenticates a client certificate before a bearer token.
    """

    def make(namespace: str, name: str) -> str:
        token = kubectl("create", "token", name, "-n", namespace, "--duration=1h", check=True).stdout.strip()
        admin = yaml.safe_load(Path(kubeconfig).read_text())
        context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
        cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
        user = f"system:serviceaccount:{namespace}:{name}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
            "current-context": user,
        }
        path = tmp_path / f"{namespace}-{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return str(path)

    return make


# The operator, started once per session under the ServiceAccount and ClusterRole it ships. -------------
# Every namespace but the end-to-end tier's own (tests/e2e runs an operator of its own there, with
# the locally built images) and those `make dev` installs the samples in (its in-cluster operator
# owns them): two operators reconciling one Agent would fight. One kopf pattern, globs negated.
SESSION_OPERATOR_SCOPE = f"--namespace=!e2?-*,!{ISOLATED_PREFIX}*,!agentfleet-demo,!monitoring"
from tests.integration.operator_harness import OperatorProcess, install_crds_and_rbac  # noqa: E402

# MCP servers are asked for their tools every 5 s instead of 60: the outage tests see recovery soon.
DISCOVERY_ENV = {"AGENTFLEET_MCP_DISCOVERY_SECONDS": "5"}


@pytest.fixture(scope="session")
def operator(
    kubectl: Kubectl,
    session_serviceaccount_kubeconfig: Callable[[str, str], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    install_crds_and_rbac(kubectl)
    config = session_serviceaccount_kubeconfig("agentfleet-system", "agentfleet-operator")
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(config, log, scope=(SESSION_OPERATOR_SCOPE,), env=DISCOVERY_ENV).start()
    _SESSION_OPERATOR.append(process)
    yield process
    _SESSION_OPERATOR.clear()
    process.stop()


# The session operator once started, for the check below.
_SESSION_OPERATOR: list[OperatorProcess] = []


@pytest.fixture(autouse=True)
def _session_operator_alive() -> None:
    """Tests that restart the session operator (to watch one restart, or to run their own in its
    place) start it again when they end; if that start failed, every later test would fail for it.
    Start it once more before the next test, so one failure stays one."""
    for process in _SESSION_OPERATOR:
        if process.process is not None and process.process.poll() is not None:
            process.start()


@pytest.fixture(scope="session")
def session_serviceaccount_kubeconfig(
    kubeconfig: str, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], str]:
    def make(namespace: str, name: str) -> str:
        token = kubectl("create", "token", name, "-n", namespace, "--duration=2h", check=True).stdout.strip()
        admin = yaml.safe_load(Path(kubeconfig).read_text())
        context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
        cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
        user = f"system:serviceaccount:{namespace}:{name}"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
            "current-context": user,
        }
        path = tmp_path_factory.mktemp("sa") / "kubeconfig"
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return str(path)

    return make
