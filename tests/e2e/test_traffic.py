"""What users rely on, shown with requests served by real pods through real Services.

Each test makes an Agent in its own e2e-* namespace, waits for its pods to run on the real node,
and sends requests from a client pod (tests/e2e/traffic.py): the caller key is enforced, rollouts
lose no request, and a canary's traffic share is the weight its status reports.
"""

from __future__ import annotations

import math

import pytest

from tests.e2e.traffic import (
    TrafficClient,
    access_key,
    apply,
    get_json,
    rules_agent,
    running_revisions,
    wait_for,
    wait_ready,
)
from tests.integration.conftest import Kubectl

READY_TIMEOUT = 180


def test_rules_agent_answers_through_its_service_only_with_its_key(
    kubectl: Kubectl, e2e_namespace: str, images: dict[str, str]
) -> None:
    ns = e2e_namespace
    apply(kubectl, rules_agent("hello", ns, reply="hi from a real pod"))
    agent = wait_ready(kubectl, ns, "hello")
    key = access_key(kubectl, ns, "hello")

    with_key = TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "hello", api_key=key, count=20).run()
    without = TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "hello", count=5).run()
    wrong = TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "hello", api_key=key + "x", count=5).run()

    assert with_key.codes == {"200": 20}, with_key
    # The answer came from the pods of the revision the status reports.
    assert with_key.revisions == {agent["status"]["revision"]["stable"]: 20}
    assert without.codes == {"401": 5}, without
    assert wrong.codes == {"401": 5}, wrong
    logs = kubectl("logs", "deploy/hello", "-n", ns, check=True).stdout
    assert '"status": 200' in logs and '"status": 401' in logs, "the runtime's access log shows both answers"


def test_rolling_update_under_steady_load_loses_no_request(
    kubectl: Kubectl, e2e_namespace: str, images: dict[str, str]
) -> None:
    ns = e2e_namespace
    apply(kubectl, rules_agent("steady", ns, reply="one", replicas=2))
    old = wait_ready(kubectl, ns, "steady")["status"]["revision"]["stable"]
    key = access_key(kubectl, ns, "steady")
    client = (
        TrafficClient(
            kubectl, ns, images["RUNTIME_IMAGE"], "steady", api_key=key, until_revision="changed", max_seconds=300
        )
        .start()
        .wait_started()
    )

    apply(kubectl, rules_agent("steady", ns, reply="two", replicas=2))
    new = wait_ready(kubectl, ns, "steady")["status"]["revision"]["stable"]
    result = client.result(timeout=360)

    assert new != old
    assert result.failed() == 0, result
    assert set(result.revisions) == {old, new}, "the load spanned the rollout"
    assert running_revisions(kubectl, ns, "steady") == {new}


def binomial_bound(p: float, n: int, sigmas: float = 4.0) -> float:
    return sigmas * math.sqrt(max(p * (1 - p), 1e-9) / n)


@pytest.mark.parametrize("finish", ["promote", "abort"])
def test_canary_share_is_the_reported_weight_and_finishing_loses_no_request(
    kubectl: Kubectl, e2e_namespace: str, images: dict[str, str], finish: str
) -> None:
    ns = e2e_namespace
    rollout = {"strategy": "Canary", "canary": {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]}}
    apply(kubectl, rules_agent("bot", ns, reply="stable", replicas=2, rollout=rollout))
    stable = wait_ready(kubectl, ns, "bot")["status"]["revision"]["stable"]
    key = access_key(kubectl, ns, "bot")

    apply(kubectl, rules_agent("bot", ns, reply="canary", replicas=2, rollout=rollout))

    def paused() -> dict | None:
        agent = get_json(kubectl, "agent", "bot", "-n", ns)
        ro = agent.get("status", {}).get("rollout", {})
        canary = agent.get("status", {}).get("revision", {}).get("canary")
        if ro.get("phase") == "Paused" and canary and running_revisions(kubectl, ns, "bot") == {stable, canary}:
            return agent
        return None

    agent = wait_for(paused, READY_TIMEOUT, "the canary paused at setWeight 10 with both tracks running")
    canary = agent["status"]["revision"]["canary"]
    status_rollout = agent["status"]["rollout"]
    assert status_rollout["weight"] == 10
    # No traffic router: the weight is a replica ratio, 1 canary pod beside 2 stable ones, and the
    # status says what is achieved rather than what was asked.
    actual = status_rollout["actualWeight"]
    assert actual == 33, status_rollout

    n = 400
    shares = TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "bot", api_key=key, count=n, threads=4).run()
    assert shares.codes == {"200": n}, shares
    observed = shares.revisions.get(canary, 0) / n
    assert abs(observed - actual / 100) <= binomial_bound(actual / 100, n), (observed, actual, shares)
    assert set(shares.revisions) == {stable, canary}

    target = canary if finish == "promote" else stable
    client = (
        TrafficClient(kubectl, ns, images["RUNTIME_IMAGE"], "bot", api_key=key, until_revision=target, max_seconds=300)
        .start()
        .wait_started()
    )
    if finish == "promote":
        kubectl("annotate", "agent", "bot", "-n", ns, "agentfleet.dev/promote=full", "--overwrite", check=True)
    else:
        kubectl("annotate", "agent", "bot", "-n", ns, "agentfleet.dev/abort=now", "--overwrite", check=True)
    result = client.result(timeout=360)

    assert result.failed() == 0, result
    final = get_json(kubectl, "agent", "bot", "-n", ns)["status"]
    assert final["revision"]["stable"] == target
    assert running_revisions(kubectl, ns, "bot") == {target}
    assert final["rollout"]["phase"] == ("Idle" if finish == "promote" else "Aborted"), final["rollout"]


@pytest.mark.timeout(1200)  # the scale-down alone waits out the HPA's five-minute stabilization
def test_autoscaled_agent_scales_up_under_cpu_load_and_back_down(
    kubectl: Kubectl, e2e_namespace: str, images: dict[str, str]
) -> None:
    """The HPA reads real CPU from the kubelet through metrics-server: load raises the replica
    count, and after the load stops the count returns to the minimum (the HPA's default scale-down
    stabilization is five minutes, so this test waits that long)."""
    ns = e2e_namespace
    apply(
        kubectl, rules_agent("busy", ns, autoscaling={"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 20})
    )
    wait_ready(kubectl, ns, "busy")
    key = access_key(kubectl, ns, "busy")

    def hpa() -> dict:
        return get_json(kubectl, "hpa", "busy", "-n", ns)

    # The HPA has read a real utilisation before the load starts: metrics flow from the kubelet.
    wait_for(lambda: hpa().get("status", {}).get("currentMetrics"), 120, "the HPA to read CPU from metrics-server")
    # A few hundred requests a second: enough CPU for the target, few enough new connections that
    # the client's own ephemeral ports (TIME_WAIT) do not run out.
    load = (
        TrafficClient(
            kubectl, ns, images["RUNTIME_IMAGE"], "busy", api_key=key, threads=4, pause_seconds=0.01, max_seconds=150
        )
        .start()
        .wait_started()
    )
    wait_for(lambda: hpa()["status"].get("desiredReplicas", 1) > 1, 150, "the HPA to scale up under load")
    wait_for(
        lambda: get_json(kubectl, "deploy", "busy", "-n", ns)["status"].get("readyReplicas", 0) > 1,
        120,
        "a second ready pod",
    )
    agent = get_json(kubectl, "agent", "busy", "-n", ns)
    result = load.result(timeout=240)
    assert result.failed() == 0, result
    assert agent["status"]["replicas"] > 1, "the Agent's status follows the autoscaler"

    wait_for(
        lambda: (
            hpa()["status"].get("desiredReplicas") == 1
            and get_json(kubectl, "deploy", "busy", "-n", ns)["spec"]["replicas"] == 1
        ),
        480,
        "the HPA to scale back to the minimum",
        interval=5,
    )
