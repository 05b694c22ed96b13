"""Canary rollouts end to end: the real operator (under its shipped RBAC) on the local cluster, a real
Prometheus scraping real runtime processes that play the stable and canary pods, real traffic.

Every wait has a generous deadline to give up; no assertion is about how long anything took.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.fakes.llm import FakeLLM
from tests.integration.canary_support import AgentWatch, Load, NamespacedOperator, Prometheus, Tracks
from tests.integration.operator_harness import install_crds_and_rbac

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
AGENT = "bot"
API = "agentfleet.dev/v1alpha1"
INTERVAL = "4s"  # >= 4 scrape intervals (1s), so rate() over the window always has samples
WAIT = 120.0  # seconds before giving up on any one state


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def operator_kubeconfig(kubeconfig: str, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kubeconfig acting as the operator's own ServiceAccount (the RBAC manifests/base ships)."""
    install_crds_and_rbac(kubectl)
    token = kubectl(
        "create", "token", "agentfleet-operator", "-n", "agentfleet-system", "--duration=1h", check=True
    ).stdout.strip()
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    user = "system:serviceaccount:agentfleet-system:agentfleet-operator"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
    path = tmp_path_factory.mktemp("operator-sa") / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def namespace(isolated_namespace: str) -> str:
    """This module's operator is its own (NamespacedOperator): a namespace the session operator,
    alive whenever an earlier module started it, does not reconcile too."""
    return isolated_namespace


@pytest.fixture
def operator(operator_kubeconfig: str, namespace: str, tmp_path: Path) -> Iterator[NamespacedOperator]:
    process = NamespacedOperator(operator_kubeconfig, tmp_path / "operator.log", namespace)
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.fixture
def tracks(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[Tracks]:
    runtimes = Tracks(kubectl, namespace, AGENT, tmp_path)
    try:
        yield runtimes
    finally:
        runtimes.stop()


@pytest.fixture
def prometheus(tracks: Tracks, namespace: str, tmp_path: Path) -> Iterator[Prometheus]:
    home = tmp_path / "prometheus"
    home.mkdir()
    # The namespace target label is what a ServiceMonitor adds; the analysis then matches it too.
    server = Prometheus(home, list(tracks.ports.values()), {"namespace": namespace})
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def loads() -> Iterator[Callable[[str], Load]]:
    started: list[Load] = []

    def make(key: str) -> Load:
        load = Load(key)
        started.append(load)
        return load

    try:
        yield make
    finally:
        for load in started:
            load.stop()


@pytest.fixture
def watch(kubeconfig: str, namespace: str) -> Iterator[Callable[[str], AgentWatch]]:
    started: list[AgentWatch] = []

    def make(name: str) -> AgentWatch:
        watcher = AgentWatch(kubeconfig, namespace, name)
        started.append(watcher)
        return watcher

    try:
        yield make
    finally:
        for watcher in started:
            watcher.stop()
            # Shown by pytest only when the test fails: every version of the Agent the watch saw.
            print(f"--- versions of the Agent:\n{watcher.history()}")


@pytest.fixture
def llms() -> Iterator[tuple[FakeLLM, FakeLLM]]:
    good, bad = FakeLLM().start(), FakeLLM().start()
    bad.mode = "error"  # every call answers 500
    try:
        yield good, bad  # type: ignore[misc]
    finally:
        good.stop()
        bad.stop()


# ----------------------------------------------------------------------------------------------- helpers


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(result.stdout) if result.stdout.strip() else None


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    return next((c for c in (obj or {}).get("status", {}).get("conditions", []) if c["type"] == type_), {})


def wait_for(
    what: str,
    predicate: Callable[[], Any],
    operator: NamespacedOperator | None = None,
    timeout: float = WAIT,
    interval: float = 0.3,
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    tail = f"\noperator log:\n{operator.log_tail(60)}" if operator else ""
    raise AssertionError(f"gave up waiting for {what}; last value: {last!r}{tail}")


def apply(kubectl: Kubectl, namespace: str, doc: dict[str, Any]) -> None:
    doc["metadata"]["namespace"] = namespace
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), check=True)


def patch_spec(kubectl: Kubectl, namespace: str, name: str, patch: dict[str, Any]) -> None:
    kubectl("patch", "agt", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": patch}), check=True)


def annotate(kubectl: Kubectl, namespace: str, name: str, annotation: str) -> None:
    kubectl("annotate", "--overwrite", "agt", name, "-n", namespace, annotation, check=True)


def rules_model() -> dict[str, Any]:
    return {"provider": "rules", "name": "greeter", "rules": [{"pattern": "hi", "reply": "hello"}]}


def canary_agent(
    name: str,
    steps: list[dict[str, Any]],
    analysis: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    prompt: str = "You greet.",
) -> dict[str, Any]:
    canary: dict[str, Any] = {"steps": steps, "progressDeadlineSeconds": 300}
    if analysis:
        canary["analysis"] = analysis
    return {
        "apiVersion": API,
        "kind": "Agent",
        "metadata": {"name": name},
        "spec": {
            "model": model or rules_model(),
            "prompt": {"system": prompt},
            "replicas": 2,
            "rollout": {"strategy": "Canary", "canary": canary},
        },
    }


def analysis(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "prometheusURL": url,
        "interval": INTERVAL,
        "maxErrorRatio": 0.05,
        "maxLatencyP95Seconds": 2.0,
        "minRequests": 3,
        "failureLimit": 2,
        "inconclusiveLimit": 5,
        **overrides,
    }


def first_rollout(kubectl: Kubectl, namespace: str, name: str, operator: NamespacedOperator) -> str:
    """The very first revision rolls out directly: stable set, no canary, no canary Deployment."""

    def settled() -> dict[str, Any] | None:
        agent = get(kubectl, "agt", name, namespace)
        status = (agent or {}).get("status", {})
        if (
            condition(agent, "Ready").get("status") == "True"
            and status.get("observedGeneration") == agent["metadata"]["generation"]
            and status.get("revision", {}).get("stable")
        ):
            return agent
        return None

    agent = wait_for(f"first revision of {name} Ready", settled, operator)
    status = agent["status"]
    assert status["revision"]["canary"] == "" and status["phase"] == "Ready", status
    assert status["rollout"]["phase"] == "Idle" and status["rollout"]["weight"] == 0
    assert get(kubectl, "deployment", f"{name}-canary", namespace) is None
    return status["revision"]["stable"]


def canary_started(kubectl: Kubectl, namespace: str, name: str, stable: str, operator: NamespacedOperator) -> str:
    def started() -> str:
        status = (get(kubectl, "agt", name, namespace) or {}).get("status", {})
        canary = status.get("revision", {}).get("canary", "")
        return canary if canary and canary != stable else ""

    return wait_for(f"a canary revision of {name}", started, operator)


def deployment_revision(kubectl: Kubectl, namespace: str, name: str) -> str | None:
    deployment = get(kubectl, "deployment", name, namespace)
    if deployment is None:
        return None
    return deployment["spec"]["template"]["metadata"]["labels"].get("agentfleet.dev/revision")


def events(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    result = kubectl(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}", "-o", "json", check=True
    )
    return json.loads(result.stdout)["items"]


def has_event(kubectl: Kubectl, operator: NamespacedOperator, name: str, type_: str, reason: str) -> bool:
    """An Event this test's operator posted: another operator on the cluster (the session one watches
    every namespace) may post the same reason about the same object."""
    return any(
        e["type"] == type_ and e["reason"] == reason and e.get("reportingInstance") == operator.instance
        for e in events(kubectl, operator.namespace, name)
    )


def measurements(watcher: AgentWatch) -> list[dict[str, Any]]:
    """Every measurement any version of the Agent showed, without repeats."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for status in watcher.statuses():
        for m in status.get("rollout", {}).get("analysis", []):
            seen[m["time"], m["metric"]] = m
    return sorted(seen.values(), key=lambda m: (m["time"], m["metric"]))


def stable_revisions(watcher: AgentWatch) -> list[str]:
    values = [s.get("revision", {}).get("stable", "") for s in watcher.statuses()]
    return [v for i, v in enumerate(values) if v and (i == 0 or values[i - 1] != v)]


# ----------------------------------------------------------------------------------------------- scenarios


def test_good_canary_walks_every_step_and_is_promoted(
    operator: NamespacedOperator,
    kubectl: Kubectl,
    namespace: str,
    tracks: Tracks,
    prometheus: Prometheus,
    loads: Callable[[str], Load],
    watch: Callable[[str], AgentWatch],
) -> None:
    steps = [{"setWeight": 25}, {"analysis": {}}, {"setWeight": 50}, {"analysis": {}}]
    apply(kubectl, namespace, canary_agent(AGENT, steps, analysis(prometheus.url)))
    old = first_rollout(kubectl, namespace, AGENT, operator)
    watcher = watch(AGENT)
    tracks.run("stable", old)
    load = loads(tracks.access_key())
    load.add("stable", tracks.url("stable"))

    patch_spec(kubectl, namespace, AGENT, {"prompt": {"system": "You greet, warmly."}})
    new = canary_started(kubectl, namespace, AGENT, old, operator)
    # The canary pods' config, served for real: a caller gets an answer, counted under the new revision.
    canary = tracks.run("canary", new)
    answer = httpx.post(
        f"{canary.url}/v1/chat/completions",
        timeout=10,
        headers={"Authorization": f"Bearer {tracks.access_key()}"},
        json={"model": "greeter", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "hello", answer.text
    assert f'revision="{new}"' in httpx.get(f"{canary.url}/metrics", timeout=5).text
    load.add("canary", tracks.url("canary"))
    canary_dep = wait_for(
        "Deployment bot-canary", lambda: get(kubectl, "deployment", f"{AGENT}-canary", namespace), operator
    )
    labels = canary_dep["spec"]["template"]["metadata"]["labels"]
    assert labels["agentfleet.dev/revision"] == new and labels["agentfleet.dev/track"] == "canary"
    assert deployment_revision(kubectl, namespace, AGENT) == old  # stable untouched during the canary

    def promoted() -> dict[str, Any] | None:
        agent = get(kubectl, "agt", AGENT, namespace)
        status = (agent or {}).get("status", {})
        if (
            status.get("revision") == {"stable": new, "canary": ""}
            and status.get("phase") == "Ready"
            and condition(agent, "Ready").get("status") == "True"
        ):
            return agent
        return None

    agent = wait_for("the canary promoted", promoted, operator)
    assert agent["status"]["rollout"]["phase"] == "Idle" and agent["status"]["rollout"]["weight"] == 0
    wait_for(
        "stable Deployment at the new revision", lambda: deployment_revision(kubectl, namespace, AGENT) == new, operator
    )
    wait_for("bot-canary deleted", lambda: get(kubectl, "deployment", f"{AGENT}-canary", namespace) is None, operator)
    assert has_event(kubectl, operator, AGENT, "Normal", "Promoted")

    weights = watcher.canary_weights()
    assert "25" in weights and "50" in weights, weights
    assert weights.index("25") < weights.index("50"), weights
    assert stable_revisions(watcher) == [old, new]
    passed = [m for m in measurements(watcher) if m["verdict"] == "Passed"]
    ratios = [m for m in passed if m["metric"] == "errorRatio"]
    counts = [m for m in passed if m["metric"] == "requestCount"]
    assert len(ratios) >= 2, measurements(watcher)  # one per analysis step
    for m in ratios:
        assert f'revision="{new}"' in m["query"] and f'namespace="{namespace}"' in m["query"]
        assert m["value"] != "" and float(m["value"]) <= 0.05, m
    assert counts and all(float(m["value"]) >= 3 for m in counts)
    assert not [m for m in measurements(watcher) if m["verdict"] == "Failed"]
    # The recorded query is one Prometheus answers.
    assert prometheus.query(ratios[-1]["query"])
    assert load.count("canary", 200) > 0 and load.count("stable", 200) > 0


def test_canary_with_failing_llm_is_rolled_back(
    operator: NamespacedOperator,
    kubectl: Kubectl,
    namespace: str,
    tracks: Tracks,
    prometheus: Prometheus,
    loads: Callable[[str], Load],
    watch: Callable[[str], AgentWatch],
    llms: tuple[FakeLLM, FakeLLM],
) -> None:
    good, bad = llms
    model = {"provider": "openai-compatible", "name": "fake-model", "endpoint": good.url}
    steps = [{"setWeight": 25}, {"analysis": {}}, {"setWeight": 50}, {"analysis": {}}]
    apply(kubectl, namespace, canary_agent(AGENT, steps, analysis(prometheus.url, minRequests=2), model=model))
    old = first_rollout(kubectl, namespace, AGENT, operator)
    watcher = watch(AGENT)
    tracks.run("stable", old)
    load = loads(tracks.access_key())
    load.add("stable", tracks.url("stable"))

    patch_spec(kubectl, namespace, AGENT, {"model": {**model, "endpoint": bad.url}})
    new = canary_started(kubectl, namespace, AGENT, old, operator)
    tracks.run("canary", new)
    # The canary's runtime retries the failing model before answering 5xx: more callers keep its window full.
    load.add("canary", tracks.url("canary"))
    load.add("canary", tracks.url("canary"))

    def aborted() -> dict[str, Any] | None:
        agent = get(kubectl, "agt", AGENT, namespace)
        return agent if (agent or {}).get("status", {}).get("rollout", {}).get("phase") == "Aborted" else None

    # interval x failureLimit is 8s; the deadline is only where we give up.
    agent = wait_for("the canary rolled back", aborted, operator)
    status = agent["status"]
    ready = condition(agent, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "RolledBack", ready
    assert status["phase"] == "Degraded"
    assert status["revision"] == {"stable": old, "canary": ""}
    assert status["rollout"]["abortedRevision"] == new and status["rollout"]["weight"] == 0
    assert condition(agent, "RolloutHealthy")["reason"] == "RolledBack"
    wide = kubectl("get", "agt", AGENT, "-n", namespace, "-o", "wide", check=True).stdout
    assert "RolledBack" in wide and "Degraded" in wide, wide
    wait_for("bot-canary deleted", lambda: get(kubectl, "deployment", f"{AGENT}-canary", namespace) is None, operator)
    assert deployment_revision(kubectl, namespace, AGENT) == old
    wait_for(
        "Warning RolledBack event",
        lambda: has_event(kubectl, operator, AGENT, "Warning", "RolledBack"),
        operator,
        timeout=30,
    )

    failed = [m for m in measurements(watcher) if m["verdict"] == "Failed" and m["metric"] == "errorRatio"]
    assert len(failed) >= 2, measurements(watcher)
    assert all(float(m["value"]) > 0.05 and f'revision="{new}"' in m["query"] for m in failed), failed
    assert set(stable_revisions(watcher)) == {old}
    assert load.count("canary") > 0 and load.count("canary", 200) == 0
    assert any(code >= 500 for (track, code) in load.codes if track == "canary")
    assert load.count("stable", 200) > 0


def test_prometheus_lost_mid_analysis_pauses_and_never_promotes(
    operator: NamespacedOperator,
    kubectl: Kubectl,
    namespace: str,
    tracks: Tracks,
    prometheus: Prometheus,
    loads: Callable[[str], Load],
    watch: Callable[[str], AgentWatch],
) -> None:
    # minRequests out of reach: while Prometheus is up nothing can pass, so only its loss decides the outcome.
    settings = analysis(prometheus.url, interval="8s", minRequests=1_000_000, inconclusiveLimit=2)
    apply(kubectl, namespace, canary_agent(AGENT, [{"setWeight": 25}, {"analysis": {}}], settings))
    old = first_rollout(kubectl, namespace, AGENT, operator)
    watcher = watch(AGENT)
    tracks.run("stable", old)
    load = loads(tracks.access_key())
    load.add("stable", tracks.url("stable"))

    patch_spec(kubectl, namespace, AGENT, {"prompt": {"system": "You greet, briefly."}})
    new = canary_started(kubectl, namespace, AGENT, old, operator)
    tracks.run("canary", new)
    load.add("canary", tracks.url("canary"))

    def measuring() -> dict[str, Any] | None:
        status = (get(kubectl, "agt", AGENT, namespace) or {}).get("status", {})
        rollout = status.get("rollout", {})
        return rollout if rollout.get("step") == 1 and rollout.get("analysis") else None

    rollout = wait_for("the first measurement of the analysis step", measuring, operator)
    assert rollout["phase"] == "Progressing" and rollout["inconclusive"] == 1, rollout
    assert all(m["verdict"] == "Inconclusive" for m in rollout["analysis"]), rollout["analysis"]
    prometheus.stop()

    def paused() -> dict[str, Any] | None:
        agent = get(kubectl, "agt", AGENT, namespace)
        return agent if (agent or {}).get("status", {}).get("rollout", {}).get("phase") == "Paused" else None

    agent = wait_for("the rollout paused", paused, operator)
    status = agent["status"]
    message = status["rollout"]["message"]
    assert "inconclusive 2 times" in message and "unreachable" in message, message
    assert status["phase"] == "Paused" and status["revision"] == {"stable": old, "canary": new}
    assert condition(agent, "RolloutHealthy")["reason"] == "CanaryPaused"
    latest = [m for m in status["rollout"]["analysis"] if m["time"] == status["rollout"]["analysis"][-1]["time"]]
    assert latest and all(m["verdict"] == "Inconclusive" and "unreachable" in m["message"] for m in latest), latest
    wait_for(
        "Warning AnalysisInconclusive event",
        lambda: has_event(kubectl, operator, AGENT, "Warning", "AnalysisInconclusive"),
        operator,
        timeout=30,
    )

    # Paused waits for a person: over the next intervals nothing is measured and nothing is promoted.
    count = len(status["rollout"]["analysis"])
    for _ in range(4):
        time.sleep(3)
        later = get(kubectl, "agt", AGENT, namespace)["status"]
        assert later["rollout"]["phase"] == "Paused" and later["revision"]["stable"] == old, later
        assert len(later["rollout"]["analysis"]) == count
    assert deployment_revision(kubectl, namespace, AGENT) == old
    assert set(stable_revisions(watcher)) == {old}
    assert not [m for m in measurements(watcher) if m["verdict"] == "Passed"]


def test_intents_promote_abort_and_retry(operator: NamespacedOperator, kubectl: Kubectl, namespace: str) -> None:
    steps = [{"setWeight": 50}, {"pause": {}}]
    for name in ("promo", "abort"):
        apply(kubectl, namespace, canary_agent(name, steps))
    old = {name: first_rollout(kubectl, namespace, name, operator) for name in ("promo", "abort")}
    for name in ("promo", "abort"):
        patch_spec(kubectl, namespace, name, {"prompt": {"system": "You greet, again."}})
    new = {name: canary_started(kubectl, namespace, name, old[name], operator) for name in ("promo", "abort")}

    def paused_at_pause(name: str) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            agent = get(kubectl, "agt", name, namespace)
            rollout = (agent or {}).get("status", {}).get("rollout", {})
            return agent if rollout.get("phase") == "Paused" and rollout.get("step") == 1 else None

        return check

    for name in ("promo", "abort"):
        agent = wait_for(f"{name} paused at the pause step", paused_at_pause(name), operator)
        assert agent["status"]["rollout"]["weight"] == 50 and agent["status"]["phase"] == "Paused"
        assert deployment_revision(kubectl, namespace, f"{name}-canary") == new[name]

    # promote=full: finished at once, the remaining steps skipped.
    annotate(kubectl, namespace, "promo", "agentfleet.dev/promote=full")

    def promoted() -> dict[str, Any] | None:
        agent = get(kubectl, "agt", "promo", namespace)
        status = (agent or {}).get("status", {})
        ok = status.get("revision") == {"stable": new["promo"], "canary": ""} and status.get("phase") == "Ready"
        return agent if ok else None

    agent = wait_for("promo promoted", promoted, operator)
    assert agent["status"]["rollout"]["handledIntents"].get("promote") == "full"
    wait_for(
        "promo stable Deployment rolled",
        lambda: deployment_revision(kubectl, namespace, "promo") == new["promo"],
        operator,
    )
    wait_for("promo-canary deleted", lambda: get(kubectl, "deployment", "promo-canary", namespace) is None, operator)
    assert has_event(kubectl, operator, "promo", "Normal", "PromoteRequested")

    # abort: rolled back to the old stable, the canary gone.
    annotate(kubectl, namespace, "abort", "agentfleet.dev/abort=1")

    def aborted() -> dict[str, Any] | None:
        agent = get(kubectl, "agt", "abort", namespace)
        return agent if (agent or {}).get("status", {}).get("rollout", {}).get("phase") == "Aborted" else None

    agent = wait_for("abort rolled back", aborted, operator)
    status = agent["status"]
    assert condition(agent, "Ready")["reason"] == "RolledBack" and condition(agent, "Ready")["status"] == "False"
    assert status["phase"] == "Degraded" and status["revision"] == {"stable": old["abort"], "canary": ""}
    assert status["rollout"]["abortedRevision"] == new["abort"]
    wait_for("abort-canary deleted", lambda: get(kubectl, "deployment", "abort-canary", namespace) is None, operator)
    assert deployment_revision(kubectl, namespace, "abort") == old["abort"]
    wait_for(
        "Warning RolledBack event",
        lambda: has_event(kubectl, operator, "abort", "Warning", "RolledBack"),
        operator,
        timeout=30,
    )

    # retry: the same revision's canary starts again from step 1.
    annotate(kubectl, namespace, "abort", "agentfleet.dev/retry=1")
    agent = wait_for("abort canary retried", paused_at_pause("abort"), operator)
    status = agent["status"]
    assert status["revision"] == {"stable": old["abort"], "canary": new["abort"]}
    assert status["rollout"]["abortedRevision"] == "" and status["rollout"]["weight"] == 50
    assert status["rollout"]["handledIntents"] == {"abort": "1", "retry": "1"}
    assert deployment_revision(kubectl, namespace, "abort-canary") == new["abort"]
    assert has_event(kubectl, operator, "abort", "Normal", "RetryRequested")


def test_rotated_credential_alone_gets_a_canary(operator: NamespacedOperator, kubectl: Kubectl, namespace: str) -> None:
    # shared/API.md: the hashes of every Secret the pods read are part of the revision, so a rotated
    # credential with nothing else changed is a new revision and, under Canary, goes through the steps.
    callers = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "callers"},
        "stringData": {"alice": "caller-key-before"},
    }
    apply(kubectl, namespace, callers)
    agent = canary_agent("rot", [{"setWeight": 50}, {"pause": {}}])
    agent["spec"]["access"] = {"apiKeySecretRef": {"name": "callers"}}
    apply(kubectl, namespace, agent)
    old = first_rollout(kubectl, namespace, "rot", operator)
    generation = get(kubectl, "agt", "rot", namespace)["metadata"]["generation"]

    callers["stringData"] = {"alice": "caller-key-after"}
    apply(kubectl, namespace, callers)
    new = canary_started(kubectl, namespace, "rot", old, operator)
    agent_now = get(kubectl, "agt", "rot", namespace)
    assert agent_now["metadata"]["generation"] == generation  # the spec never changed
    canary_dep = wait_for(
        "Deployment rot-canary", lambda: get(kubectl, "deployment", "rot-canary", namespace), operator
    )
    assert canary_dep["spec"]["template"]["metadata"]["labels"]["agentfleet.dev/revision"] == new
    assert deployment_revision(kubectl, namespace, "rot") == old  # stable keeps the old key until promoted
    # Only the Secret's hash differs: both revisions render the same runtime config but for the revision.
    configs = {
        rev: json.loads(get(kubectl, "configmap", f"rot-config-{rev}", namespace)["data"]["config.json"])
        for rev in (old, new)
    }
    for config in configs.values():
        config["agent"].pop("revision")
    assert configs[old] == configs[new]
