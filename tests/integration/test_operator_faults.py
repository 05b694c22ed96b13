"""Faults injected into a running system: the operator SIGKILLed at seeded random points of a 200-Agent
create and of a canary, and kube-apiserver and etcd restarted under it.

Destructive (components are killed), so these run on a cluster of their own in .fault-cluster/
(gitignored), never on .cluster/ that the other tests share, nor on .bench-cluster/ of the benchmarks.
The module starts it from an empty etcd and stops it afterwards. Every wait has a generous deadline to
give up; no assertion is about how long anything took.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import CLUSTER_SCRIPT, CLUSTER_UP_TIMEOUT, ROOT, Kubectl, _unavailable
from tests.integration.operator_harness import OperatorProcess, install_crds_and_rbac
from tests.integration.test_operator import condition, rules_agent, wait_for

FAULT_DIR = ROOT / ".fault-cluster"
# `hack/cluster.sh up` writes the admin kubeconfig to $AGENTFLEET_CLUSTER_DIR/kubeconfig.
FAULT_KUBECONFIG = FAULT_DIR / "kubeconfig"
# kwok nodes take 110 pods each: 200 pods per fleet seed (a deleted fleet's pods may still be going when the
# next one starts), the canaries' and the control-plane tests', with room.
FAULT_NODES = "8"
FLEET = 200
# One 200-Agent create per seed (all Ready within about a minute here, so kills must come from inside
# it). Each seed draws two kill points, each with a sub-second jitter so that kills land inside requests
# too: an early one while children are being made (after a number of writes), and a later one while
# statuses are being written (once a number of Agents are Ready; if already passed, right after the restart).
FLEET_SEEDS = (7, 1234, 99991)
# A 200-Agent create takes ~2,300 writes (~12 per Agent), front-loaded: children first, statuses as pods come up.
MAX_WRITES_BEFORE_KILL = 300
GIVE_UP = 300.0  # seconds before giving up on any one state: the machine is small and may be shared
IDLE = 20.0  # seconds without a write after which a kill point that was not reached is taken anyway
LABEL_AGENT = "agentfleet.dev/agent"
OPERATOR_KINDS = (
    "deployments",
    "services",
    "serviceaccounts",
    "networkpolicies",
    "secrets",
    "configmaps",
    "poddisruptionbudgets",
    "horizontalpodautoscalers",
)
# Made by the cluster in every namespace, owned by no Agent.
CLUSTER_MADE = {("configmaps", "kube-root-ca.crt"), ("serviceaccounts", "default")}


# ----------------------------------------------------------------------------------------------- fixtures


def cluster_sh(
    *args: str, timeout: float = CLUSTER_UP_TIMEOUT, stop_grace: str | None = None
) -> subprocess.CompletedProcess[str]:
    """hack/cluster.sh on the fault cluster; FAULT_DIR is absolute, so the state lands there whatever the cwd."""
    env = dict(os.environ, AGENTFLEET_CLUSTER_DIR=str(FAULT_DIR), AGENTFLEET_CLUSTER_NODES=FAULT_NODES)
    if stop_grace is not None:
        env["AGENTFLEET_CLUSTER_STOP_GRACE"] = stop_grace
    # Pipes are safe: the script gives the components it leaves running their own stdio (log files).
    return subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def fault_kubeconfig() -> Iterator[str]:
    if shutil.which("kubectl") is None:
        _unavailable("kubectl is not on PATH")
    FAULT_DIR.mkdir(exist_ok=True)
    # Held for the whole module. A run that merely reused a fault cluster another run had started lost
    # it (kubeconfig and all) when the other run's teardown called `down`; one owner at a time.
    # Not the script's own .lock: `up`, `restart` and `down` take that one themselves.
    lock = (FAULT_DIR / ".owner.lock").open("w")
    deadline = time.monotonic() + 900
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                _unavailable(f"another test run has held {FAULT_DIR} for 15 minutes")
            time.sleep(2)
    try:
        # Always from scratch: a cluster left by a crashed run may have other nodes and its objects.
        cluster_sh("down", timeout=180)
        try:
            result = cluster_sh("up")
        except subprocess.TimeoutExpired:
            _unavailable(f"`hack/cluster.sh up` ({FAULT_DIR}) did not finish within {CLUSTER_UP_TIMEOUT}s")
        except OSError as exc:
            _unavailable(f"could not run hack/cluster.sh: {exc}")
        if result.returncode != 0:
            _unavailable(
                f"`hack/cluster.sh up` ({FAULT_DIR}) exited with {result.returncode}:\n"
                + "\n".join(result.stderr.splitlines()[-40:])
            )
        if not FAULT_KUBECONFIG.is_file():
            _unavailable(f"`hack/cluster.sh up` succeeded but wrote no {FAULT_KUBECONFIG}:\n{result.stderr}")
        yield str(FAULT_KUBECONFIG)
    finally:
        cluster_sh("down", timeout=180)
        lock.close()


@pytest.fixture(scope="module")
def fkubectl(fault_kubeconfig: str) -> Kubectl:
    """kubectl on the fault cluster, shaped like conftest's `kubectl` fixture."""

    def run(
        *args: str,
        check: bool = False,
        stdin: str | None = None,
        timeout: float = 120,
        as_kubeconfig: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", f"--kubeconfig={as_kubeconfig or fault_kubeconfig}", *args]
        result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} exited with {result.returncode}\nstderr:\n{result.stderr}", pytrace=False)
        return result

    return run


@pytest.fixture(scope="module")
def fault_operator(
    fault_kubeconfig: str, fkubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator under its own ServiceAccount token and the ClusterRole it ships, never the admin cert."""
    install_crds_and_rbac(fkubectl)
    token = fkubectl(
        "create", "token", "agentfleet-operator", "-n", "agentfleet-system", "--duration=2h", check=True
    ).stdout.strip()
    admin = yaml.safe_load(Path(fault_kubeconfig).read_text())
    cluster = admin["clusters"][0]
    user = "system:serviceaccount:agentfleet-system:agentfleet-operator"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    directory = tmp_path_factory.mktemp("fault-operator")
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    process = OperatorProcess(str(path), directory / "operator.log")
    try:
        yield process.start(timeout=GIVE_UP)
    finally:
        process.stop(signal.SIGKILL)


@pytest.fixture
def operator(fault_operator: OperatorProcess) -> OperatorProcess:
    """The module's operator, running: a test that failed between a kill and the restart must not leave
    the next test without one."""
    if fault_operator.process is None or fault_operator.process.poll() is not None:
        fault_operator.start(timeout=GIVE_UP)
    return fault_operator


@pytest.fixture
def fault_namespace(fkubectl: Kubectl) -> str:
    # Not deleted here: the whole cluster goes at the end of the module, and a half-collected namespace
    # would only load the control plane while the next test runs (the fleet test deletes its own).
    name = f"fault-{uuid.uuid4().hex[:8]}"
    fkubectl("create", "namespace", name, check=True)
    return name


# ----------------------------------------------------------------------------------------------- helpers


def kubectl_json(kubectl: Kubectl, *args: str) -> Any:
    """`kubectl ... -o json`, or None when it fails: waits poll through API server restarts."""
    result = kubectl(*args, "-o", "json", timeout=60)
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout)
    except ValueError:
        return None


def items(kubectl: Kubectl, kind: str, namespace: str) -> list[dict[str, Any]]:
    listing = kubectl_json(kubectl, "get", kind, "-n", namespace)
    assert listing is not None, f"could not list {kind} in {namespace}"
    return listing["items"]


def get_obj(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", timeout=60)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout) if result.stdout.strip() else None


def is_ready(agent: dict[str, Any]) -> bool:
    return (
        condition(agent, "Ready").get("status") == "True"
        and agent.get("status", {}).get("observedGeneration") == agent["metadata"]["generation"]
    )


def alive(operator: OperatorProcess) -> bool:
    return operator.process is not None and operator.process.poll() is None


def all_ready(
    kubectl: Kubectl, namespace: str, names: set[str], operator: OperatorProcess
) -> dict[str, dict[str, Any]]:
    """Wait until exactly these Agents exist and each is Ready at its current generation."""
    last: dict[str, dict[str, Any]] = {}

    def check() -> dict[str, dict[str, Any]] | None:
        nonlocal last
        assert alive(operator), f"the operator exited:\n{operator.log_tail()}"
        listing = kubectl_json(kubectl, "get", "agents", "-n", namespace)
        if listing is None:
            return None
        last = {a["metadata"]["name"]: a for a in listing["items"]}
        return last if set(last) == names and all(is_ready(a) for a in last.values()) else None

    try:
        return wait_for(f"{len(names)} Agents Ready", check, timeout=GIVE_UP, interval=1.0)
    except AssertionError:
        late = sorted((n, condition(a, "Ready").get("reason")) for n, a in last.items() if not is_ready(a))
        missing = sorted(names - set(last))
        raise AssertionError(
            f"not all {len(names)} Agents Ready: {len(late)} not ready, e.g. {late[:10]}; "
            f"missing {missing[:10]}\noperator log:\n{operator.log_tail()}"
        ) from None


def ready_count(kubectl: Kubectl, namespace: str) -> int:
    listing = kubectl_json(kubectl, "get", "agents", "-n", namespace)
    return sum(is_ready(a) for a in listing["items"]) if listing else -1


class WriteLog:
    """The operator's logged writes (AGENTFLEET_LOG_WRITES) for objects in one namespace, counted from
    the moment this is made; each look reads only what the log gained since the last one."""

    def __init__(self, operator: OperatorProcess, namespace: str) -> None:
        self.path = operator.log_path
        self.marker = f"/namespaces/{namespace}/".encode()
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self.count = 0
        self.last_write = time.monotonic()
        self._partial = b""

    def poll(self) -> int:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        new = sum(1 for line in lines if b'"write: ' in line and self.marker in line)
        if new:
            self.count += new
            self.last_write = time.monotonic()
        return self.count


def kill_after_writes(operator: OperatorProcess, writes: WriteLog, target: int, jitter: float) -> str:
    """SIGKILL the operator once it has made `target` writes in the namespace (or, should it run out of
    work first, after IDLE seconds without one), `jitter` seconds later. Returns what the point was."""

    since = time.monotonic()  # a restart may have taken longer than IDLE without writes: not idleness

    def reached() -> bool:
        assert alive(operator), f"the operator exited before the kill point:\n{operator.log_tail()}"
        return writes.poll() >= target or time.monotonic() - max(writes.last_write, since) > IDLE

    wait_for(f"{target} operator writes (or an idle operator)", reached, timeout=GIVE_UP, interval=0.02)
    time.sleep(jitter)
    count = writes.poll()
    operator.stop(signal.SIGKILL)
    return f"after {count} writes (target {target}, +{jitter:.2f}s)"


def kill_when_ready(operator: OperatorProcess, kubectl: Kubectl, namespace: str, target: int, jitter: float) -> str:
    """SIGKILL the operator, `jitter` seconds after at least `target` Agents of the namespace are Ready."""

    def reached() -> bool:
        assert alive(operator), f"the operator exited before the kill point:\n{operator.log_tail()}"
        return ready_count(kubectl, namespace) >= target

    wait_for(f"{target} Agents Ready", reached, timeout=GIVE_UP, interval=0.2)
    time.sleep(jitter)
    operator.stop(signal.SIGKILL)
    return f"once {target} Agents were Ready (+{jitter:.2f}s)"


def restart(operator: OperatorProcess) -> None:
    operator.start(timeout=GIVE_UP)


def drained(operator: OperatorProcess) -> bool:
    """Nothing queued or being reconciled: after a restart, every listed object has been reconciled once."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/readyz", timeout=5) as response:
            return json.loads(response.read()).get("queued") == 0
    except OSError:
        return False


def children_by_agent(
    kubectl: Kubectl, namespace: str, agents: dict[str, dict[str, Any]]
) -> dict[str, dict[str, list[str]]]:
    """Every object of the kinds the operator makes, by owning Agent and kind. Fails on an orphan: one
    controlled by no Agent, by an Agent that does not exist (a stale uid), or labelled for another."""
    uids = {a["metadata"]["uid"]: name for name, a in agents.items()}
    found: dict[str, dict[str, list[str]]] = {name: {} for name in agents}
    for kind in OPERATOR_KINDS:
        for obj in items(kubectl, kind, namespace):
            meta = obj["metadata"]
            if (kind, meta["name"]) in CLUSTER_MADE:
                continue
            controllers = [o for o in meta.get("ownerReferences", []) if o.get("controller")]
            assert len(controllers) == 1 and controllers[0]["kind"] == "Agent", (
                f"{kind}/{meta['name']} is not controlled by one Agent (orphan): {meta.get('ownerReferences')}"
            )
            owner = uids.get(controllers[0]["uid"])
            assert owner is not None, f"{kind}/{meta['name']} is owned by an Agent that does not exist: {controllers}"
            label = meta.get("labels", {}).get(LABEL_AGENT)
            assert controllers[0]["name"] == owner and label == owner, (
                f"{kind}/{meta['name']}: owner {controllers[0]['name']}, label {label}"
            )
            found[owner].setdefault(kind, []).append(meta["name"])
    return {name: {kind: sorted(names) for kind, names in kinds.items()} for name, kinds in found.items()}


def expected_children(name: str, revisions: list[str], replicas: int) -> dict[str, list[str]]:
    """What API.md says one Agent without autoscaling, Connectors or StatePolicy owns, outside a canary."""
    expected = {
        "deployments": [name],
        "services": [name],
        "serviceaccounts": [name],
        "networkpolicies": [name],
        "secrets": [f"{name}-access"],
        "configmaps": sorted(f"{name}-config-{r}" for r in revisions),
    }
    if replicas > 1:
        expected["poddisruptionbudgets"] = [name]
    return expected


def assert_fleet_children(kubectl: Kubectl, namespace: str, agents: dict[str, dict[str, Any]]) -> None:
    """Exactly one set of children per Agent of the fleet (one replica each), nothing orphaned.

    One ReplicaSet per Deployment (revision annotation "1") also proves that no operator incarnation
    rendered another pod template than the others: that would have rolled the Deployment.
    """
    found = children_by_agent(kubectl, namespace, agents)
    for name, agent in agents.items():
        revision = agent["status"]["revision"]
        assert revision["stable"] and revision["canary"] == "", (name, revision)
        assert found[name] == expected_children(name, [revision["stable"]], 1), f"children of {name}: {found[name]}"

    deployments = {d["metadata"]["name"]: d for d in items(kubectl, "deployments", namespace)}
    replica_sets: dict[str, list[str]] = {}
    for rs in items(kubectl, "replicasets", namespace):
        owner = next(o for o in rs["metadata"]["ownerReferences"] if o.get("controller"))
        assert owner["kind"] == "Deployment" and owner["uid"] == deployments[owner["name"]]["metadata"]["uid"], (
            f"ReplicaSet {rs['metadata']['name']} is orphaned: {owner}"
        )
        replica_sets.setdefault(owner["name"], []).append(rs["metadata"]["name"])
    for name, agent in agents.items():
        deployment = deployments[name]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["agentfleet.dev/revision"] == agent["status"]["revision"]["stable"], name
        assert len(replica_sets.get(name, [])) == 1, f"{name} was rolled: ReplicaSets {replica_sets.get(name)}"
        assert deployment["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == "1", name
    pods: dict[str, int] = {}
    for pod in items(kubectl, "pods", namespace):
        label = pod["metadata"].get("labels", {}).get(LABEL_AGENT)
        assert label in agents, f"pod {pod['metadata']['name']} belongs to no Agent (label {label!r})"
        if not pod["metadata"].get("deletionTimestamp"):
            pods[label] = pods.get(label, 0) + 1
    assert pods == dict.fromkeys(agents, 1), {n: c for n, c in pods.items() if c != 1}


# ----------------------------------------------------------------------------------------------- canary

CANARY = "bot"
CANARY_STEPS = [{"setWeight": 20}, {"pause": {}}]


def canary_agent(prompt: str) -> dict[str, Any]:
    # No analysis step: that would need Prometheus; the pause waits for a person, so the state is stable.
    return rules_agent(
        CANARY,
        replicas=2,
        prompt={"system": prompt},
        rollout={"strategy": "Canary", "canary": {"steps": CANARY_STEPS, "progressDeadlineSeconds": 600}},
    )


def rollout_snapshot(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    """Everything that makes up the rollout's state, as the cluster shows it."""
    agent = get_obj(kubectl, "agent", CANARY, namespace)
    assert agent is not None
    status = agent["status"]
    deployments = {d["metadata"]["name"]: d for d in items(kubectl, "deployments", namespace)}

    def track(name: str) -> tuple[str, str, int] | None:
        d = deployments.get(name)
        if d is None:
            return None
        return (
            d["metadata"]["uid"],
            d["spec"]["template"]["metadata"]["labels"]["agentfleet.dev/revision"],
            d["spec"]["replicas"],
        )

    rollout = status["rollout"]
    return {
        "revision": status["revision"],
        "phase": status["phase"],
        "rollout": {k: rollout.get(k) for k in ("phase", "step", "weight", "handledIntents", "abortedRevision")},
        "deployments": sorted(deployments),
        "stable": track(CANARY),
        "canary": track(f"{CANARY}-canary"),
        "configmaps": sorted(
            c["metadata"]["name"]
            for c in items(kubectl, "configmaps", namespace)
            if c["metadata"]["name"] != "kube-root-ca.crt"
        ),
    }


def paused_at_pause_step(kubectl: Kubectl, namespace: str) -> dict[str, Any] | None:
    agent = get_obj(kubectl, "agent", CANARY, namespace)
    status = (agent or {}).get("status", {})
    rollout = status.get("rollout", {})
    if (
        rollout.get("phase") == "Paused"
        and rollout.get("step") == 1
        and status.get("revision", {}).get("canary")
        and get_obj(kubectl, "deployment", f"{CANARY}-canary", namespace)
    ):
        return agent
    return None


@pytest.mark.parametrize("seed, kill_at", [(11, "paused"), (4242, "starting")], ids=["paused", "starting"])
def test_operator_killed_during_a_canary_keeps_the_rollout_state(
    operator: OperatorProcess, fkubectl: Kubectl, fault_namespace: str, seed: int, kill_at: str
) -> None:
    """paused: SIGKILL while the canary waits at its pause step; the restarted operator must see the very
    same rollout and change nothing. starting: SIGKILL a seeded number of writes after the prompt change
    (the canary half made), and again a few writes after the promote intent; both must be finished."""
    ns, rng = fault_namespace, random.Random(seed)
    points: list[str] = []
    fkubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(canary_agent("You greet.")), check=True)
    first = wait_for(
        "first revision Ready",
        lambda: (
            (a := get_obj(fkubectl, "agent", CANARY, ns)) and is_ready(a) and a["status"]["revision"]["stable"] and a
        ),
        timeout=GIVE_UP,
    )
    old = first["status"]["revision"]["stable"]
    assert first["status"]["revision"]["canary"] == "" and first["status"]["rollout"]["phase"] == "Idle"
    old_stable_uid = get_obj(fkubectl, "deployment", CANARY, ns)["metadata"]["uid"]

    writes = WriteLog(operator, ns)
    fkubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(canary_agent("You greet, briefly.")), check=True)
    if kill_at == "starting":
        # Starting a canary is a handful of writes (revision ConfigMap, canary Deployment, status, Event).
        points.append(
            "after the prompt change " + kill_after_writes(operator, writes, rng.randint(1, 3), rng.uniform(0, 0.3))
        )
        restart(operator)
    wait_for("the canary Paused at its pause step", lambda: paused_at_pause_step(fkubectl, ns), timeout=GIVE_UP)
    before = rollout_snapshot(fkubectl, ns)
    new = before["revision"]["canary"]
    assert before["revision"]["stable"] == old and new != old, before
    assert before["rollout"]["weight"] == 20 and before["phase"] == "Paused", before
    assert before["deployments"] == [CANARY, f"{CANARY}-canary"], before  # no second canary, no stray track
    assert before["stable"][:2] == (old_stable_uid, old) and before["canary"][1] == new, before
    assert before["configmaps"] == sorted([f"{CANARY}-config-{old}", f"{CANARY}-config-{new}"]), before
    config = json.loads(get_obj(fkubectl, "configmap", f"{CANARY}-config-{new}", ns)["data"]["config.json"])
    assert config["systemPrompt"] == "You greet, briefly."  # the canary runs the edit, not a stale render

    if kill_at == "paused":
        time.sleep(rng.uniform(0, 1))
        operator.stop(signal.SIGKILL)
        points.append("while Paused")
        writes = WriteLog(operator, ns)
        restart(operator)
        wait_for("the restarted operator's first reconciles", lambda: drained(operator), timeout=GIVE_UP)
        # Sampled over a few seconds more: the rollout must not move, and nothing needs rewriting.
        for _ in range(6):
            assert rollout_snapshot(fkubectl, ns) == before
            time.sleep(0.5)
        writes.poll()
        assert writes.count == 0, f"the restarted operator rewrote a paused canary:\n{operator.log_tail()}"

    writes = WriteLog(operator, ns)
    fkubectl("annotate", "--overwrite", "agt", CANARY, "-n", ns, "agentfleet.dev/promote=full", check=True)
    if kill_at == "starting":
        points.append(
            "after promote=full " + kill_after_writes(operator, writes, rng.randint(1, 3), rng.uniform(0, 0.3))
        )
        restart(operator)
    print(f"kill points (seed {seed}): {points}")

    def promoted() -> dict[str, Any] | None:
        agent = get_obj(fkubectl, "agent", CANARY, ns)
        status = (agent or {}).get("status", {})
        return (
            agent
            if agent
            and status.get("revision") == {"stable": new, "canary": ""}
            and is_ready(agent)
            and get_obj(fkubectl, "deployment", f"{CANARY}-canary", ns) is None
            else None
        )

    try:
        agent = wait_for("promotion to the canary's revision", promoted, timeout=GIVE_UP)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nkill points: {points}\noperator log:\n{operator.log_tail()}") from None
    rollout = agent["status"]["rollout"]
    assert rollout["phase"] == "Idle" and rollout["weight"] == 0, rollout
    assert rollout["handledIntents"].get("promote") == "full", rollout
    after = rollout_snapshot(fkubectl, ns)
    # The stable Deployment was rolled in place to the new revision, never deleted and recreated.
    assert after["deployments"] == [CANARY] and after["stable"] == (old_stable_uid, new, 2), after
    assert agent["status"]["revisionHistory"][:2] == [new, old], agent["status"]["revisionHistory"]
    # One child of each kind (the old revision's ConfigMap kept as history for rollback), none orphaned.
    assert children_by_agent(fkubectl, ns, {CANARY: agent})[CANARY] == expected_children(CANARY, [old, new], 2)


def test_restart_after_a_finished_canary_writes_nothing(
    operator: OperatorProcess, fkubectl: Kubectl, fault_namespace: str
) -> None:
    """What the paused case proves for a canary in flight, for one that has finished: a restarted
    operator finds nothing to write. (It once rewrote the status every time: the cleared rollout
    timestamps were dropped from the merge patch, so the server kept them; see status_patch.)"""
    ns = fault_namespace
    fkubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(canary_agent("You greet.")), check=True)
    wait_for(
        "first revision Ready",
        lambda: (a := get_obj(fkubectl, "agent", CANARY, ns)) and is_ready(a) and a["status"]["revision"]["stable"],
        timeout=GIVE_UP,
    )
    fkubectl("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(canary_agent("You greet, briefly.")), check=True)
    new = wait_for("the canary Paused", lambda: paused_at_pause_step(fkubectl, ns), timeout=GIVE_UP)["status"][
        "revision"
    ]["canary"]
    fkubectl("annotate", "--overwrite", "agt", CANARY, "-n", ns, "agentfleet.dev/promote=full", check=True)
    wait_for(
        "promotion",
        lambda: (
            (a := get_obj(fkubectl, "agent", CANARY, ns))
            and is_ready(a)
            and a["status"]["revision"] == {"stable": new, "canary": ""}
            and get_obj(fkubectl, "deployment", f"{CANARY}-canary", ns) is None
        ),
        timeout=GIVE_UP,
    )
    wait_for("the promotion's last reconciles", lambda: drained(operator), timeout=GIVE_UP)

    operator.stop(signal.SIGKILL)
    writes = WriteLog(operator, ns)
    restart(operator)
    wait_for("the restarted operator's first reconciles", lambda: drained(operator), timeout=GIVE_UP)
    writes.poll()
    assert writes.count == 0, (
        f"{writes.count} writes after a restart; status.rollout: "
        f"{get_obj(fkubectl, 'agent', CANARY, ns)['status']['rollout']}"
    )


# ----------------------------------------------------------------------------------------------- control plane


class Creator(threading.Thread):
    """Creates Agents one after another, retrying each until the API server takes it: runs across a
    control-plane restart, so some land just before the outage and some right after it."""

    def __init__(self, kubectl: Kubectl, namespace: str, names: list[str]) -> None:
        super().__init__(daemon=True)
        self.kubectl, self.namespace, self.names = kubectl, namespace, names
        self.failures = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        for name in self.names:
            while not self.stopping.is_set():
                doc = yaml.safe_dump(rules_agent(name, replicas=1))
                try:
                    result = self.kubectl(
                        "apply",
                        "-n",
                        self.namespace,
                        "--server-side",
                        "--request-timeout=5s",
                        "-f",
                        "-",
                        stdin=doc,
                        timeout=30,
                    )
                    if result.returncode == 0:
                        break
                except subprocess.TimeoutExpired:
                    pass  # a connection the restart left hanging: try again
                self.failures += 1
                time.sleep(0.5)
            time.sleep(0.3)


@pytest.mark.parametrize(
    "components, stop_grace",
    [(("kube-apiserver",), None), (("etcd", "kube-apiserver"), "0")],
    ids=["apiserver", "etcd+apiserver"],
)
def test_control_plane_restart_mid_run(
    operator: OperatorProcess,
    fkubectl: Kubectl,
    fault_namespace: str,
    components: tuple[str, ...],
    stop_grace: str | None,
) -> None:
    """apiserver: a graceful restart (TERM), as in a rolling upgrade. etcd+apiserver: both SIGKILLed
    (grace 0) and started again, as after a control-plane node crash; etcd keeps its data."""
    ns = fault_namespace
    pid = operator.process.pid if operator.process else None
    early = [f"early-{i}" for i in range(20)]
    fkubectl(
        "apply",
        "-n",
        ns,
        "--server-side",
        "-f",
        "-",
        stdin=yaml.safe_dump_all([rules_agent(n, replicas=1) for n in early]),
        check=True,
    )
    # Mid-run: some Agents Ready, others still being made, when the control plane goes.
    wait_for("a few Agents Ready", lambda: ready_count(fkubectl, ns) >= 3, timeout=GIVE_UP)
    during = Creator(fkubectl, ns, [f"during-{i}" for i in range(10)])
    during.start()
    time.sleep(1)
    log_before = operator.log_path.stat().st_size
    try:
        for component in components:
            result = cluster_sh("restart", component, timeout=GIVE_UP, stop_grace=stop_grace)
            assert result.returncode == 0, result.stderr
    except BaseException:
        during.stopping.set()
        raise
    during.join(timeout=GIVE_UP)
    assert not during.is_alive(), "Agents could still not be created after the restart"
    print(f"creates refused or timed out during the outage: {during.failures}")
    assert alive(operator) and operator.process and operator.process.pid == pid, (
        f"the operator exited during the outage:\n{operator.log_tail()}"
    )
    with operator.log_path.open("rb") as log:
        log.seek(log_before)
        felt = log.read().decode(errors="replace")
    # The outage reached the operator (its client or kopf's watches saw it), or this test proves nothing.
    assert "API server unreachable" in felt or "failed; will retry" in felt, operator.log_tail()

    # After the restart: new Agents, and an edit that only a resumed watch can deliver.
    late = [f"late-{i}" for i in range(5)]
    fkubectl(
        "apply",
        "-n",
        ns,
        "--server-side",
        "-f",
        "-",
        stdin=yaml.safe_dump_all([rules_agent(n, replicas=1) for n in late]),
        check=True,
    )
    edited = early[:5]
    for name in edited:
        fkubectl(
            "patch",
            "agt",
            name,
            "-n",
            ns,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"prompt": {"system": "You greet, after the outage."}}}),
            check=True,
        )
    agents = all_ready(fkubectl, ns, set(early) | set(during.names) | set(late), operator)
    deployments = {d["metadata"]["name"]: d for d in items(fkubectl, "deployments", ns)}
    for name, agent in agents.items():
        # Revisions differ per Agent (each has its own access key), so each is checked against what it renders.
        revision = agent["status"]["revision"]["stable"]
        config_map = get_obj(fkubectl, "configmap", f"{name}-config-{revision}", ns)
        assert config_map is not None, f"{name}: no ConfigMap for status.revision {revision}"
        prompt = json.loads(config_map["data"]["config.json"])["systemPrompt"]
        want = "You greet, after the outage." if name in edited else "You greet."
        assert prompt == want, f"{name}: status.revision {revision} renders {prompt!r}, the spec says {want!r}"
        assert deployments[name]["spec"]["template"]["metadata"]["labels"]["agentfleet.dev/revision"] == revision
    found = children_by_agent(fkubectl, ns, agents)
    for name, agent in agents.items():
        current = f"{name}-config-{agent['status']['revision']['stable']}"
        configs = found[name].pop("configmaps", [])
        # An edited Agent keeps its first revision's ConfigMap as history, if that one was ever made.
        assert current in configs and len(configs) <= (2 if name in edited else 1), f"{name}: {configs}"
        expected = expected_children(name, [], 1)
        del expected["configmaps"]
        assert found[name] == expected, f"children of {name}: {found[name]}"
    assert alive(operator) and operator.process and operator.process.pid == pid


# ----------------------------------------------------------------------------------------------- 200-Agent create
# Last in the module: the fleets make every later operator restart (which re-lists everything) slower.


@pytest.mark.parametrize("seed", FLEET_SEEDS)
def test_operator_killed_at_seeded_points_of_a_200_agent_create(
    operator: OperatorProcess, fkubectl: Kubectl, fault_namespace: str, seed: int
) -> None:
    ns, rng = fault_namespace, random.Random(seed)
    names = {f"bot-{i}" for i in range(FLEET)}
    writes = WriteLog(operator, ns)
    manifest = yaml.safe_dump_all([rules_agent(f"bot-{i}", replicas=1) for i in range(FLEET)])
    created: list[subprocess.CompletedProcess[str]] = []
    # In the background: the first kill point may come while the Agents are still being created.
    creating = threading.Thread(
        target=lambda: created.append(
            fkubectl("apply", "-n", ns, "--server-side", "-f", "-", stdin=manifest, timeout=GIVE_UP)
        ),
        daemon=True,
    )
    creating.start()

    points: list[str] = []
    ready_at_kill: list[int] = []
    for phase in ("early", "late"):
        if phase == "early":
            point = kill_after_writes(operator, writes, rng.randint(1, MAX_WRITES_BEFORE_KILL), rng.uniform(0, 0.5))
        else:
            point = kill_when_ready(operator, fkubectl, ns, rng.randint(1, FLEET - 1), rng.uniform(0, 0.5))
        # Agent statuses are the operator's to write, so they stand still between the kill and the restart.
        ready_at_kill.append(ready_count(fkubectl, ns))
        points.append(f"seed {seed}, {phase}: {point}; {ready_at_kill[-1]} Agents Ready at the kill")
        writes = WriteLog(operator, ns)  # the next point counts from this restart
        restart(operator)
    print("kill points:\n" + "\n".join(points))  # shown with -rA or on failure

    creating.join(timeout=GIVE_UP)
    assert created and created[0].returncode == 0, created and created[0].stderr
    # Proof that the early kill interrupted the create rather than an operator with nothing left to do (the
    # late one may find the last Agents just turned Ready; it is reported, not required).
    assert 0 <= ready_at_kill[0] < FLEET, points
    agents = all_ready(fkubectl, ns, names, operator)
    assert_fleet_children(fkubectl, ns, agents)
    assert alive(operator)
    # Unlike the other namespaces, gone before the next seed: 200 more Agents to re-list at each restart
    # would slow every later case down.
    fkubectl("delete", "namespace", ns, "--wait=false", check=True)
