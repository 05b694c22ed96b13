"""Canary analysis against a Prometheus in the cluster, measuring what real canary pods answered.

The Prometheus is the samples' (demo/prometheus.yaml, confined to the test's namespace): it finds the
agent pods by Kubernetes service discovery and scrapes their /metrics. The operator runs in the
cluster from its image, as shipped (tests/e2e/in_cluster.py), and reaches the Prometheus by its
Service name as it would in production. The agent talks to the demo
model stand-in, so its answers travel the whole runtime path. A healthy canary is promoted by the
analysis alone, with no request lost; a canary whose model credential is wrong answers 5xx, the
analysis measures that error ratio from the scraped counters, and the canary is rolled back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.demo import demo_backends, namespaced_prometheus
from tests.e2e.in_cluster import deploy_operator
from tests.e2e.traffic import (
    TrafficClient,
    access_key,
    get_json,
    running_revisions,
    wait_for,
    wait_ready,
)
from tests.integration.conftest import Kubectl

ROLLOUT_TIMEOUT = 300
QUESTION = "What is the tier of ada@example.com?"


def analysed_agent(namespace: str, credentials_secret: str) -> dict[str, Any]:
    analysis = {
        "prometheusURL": f"http://prometheus.{namespace}.svc:9090",
        "interval": "20s",
        "maxErrorRatio": 0.05,
        "maxLatencyP95Seconds": 2.0,
        "minRequests": 10,
        "failureLimit": 1,
    }
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "bot", "namespace": namespace},
        "spec": {
            "model": {
                "provider": "openai-compatible",
                "name": "gpt-4o-mini",
                "endpoint": f"http://demo-llm.{namespace}.svc:8080/v1",
                "credentialsSecretRef": {"name": credentials_secret, "key": "apiKey"},
            },
            "prompt": {"system": "You are a support assistant."},
            "replicas": 2,
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            "rollout": {
                "strategy": "Canary",
                "canary": {
                    "steps": [{"setWeight": 50}, {"pause": {"duration": "30s"}}, {"analysis": {}}],
                    "analysis": analysis,
                },
            },
        },
    }


def set_up(kubectl: Kubectl, ns: str, images: dict[str, str], tmp: Path) -> tuple[str, str]:
    deploy_operator(kubectl, tmp, ns, images)
    wrong_key = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "llm-key-wrong", "namespace": ns},
        "stringData": {"apiKey": "not-the-key"},
    }
    docs = [
        *demo_backends(ns, images["RUNTIME_IMAGE"], "s3cret"),
        wrong_key,
        *namespaced_prometheus(ns, images["PROMETHEUS_IMAGE"]),
    ]
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs), check=True)
    kubectl(
        "rollout", "status", "deploy/demo-llm", "deploy/prometheus", "-n", ns, "--timeout=180s", check=True, timeout=200
    )
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(analysed_agent(ns, "llm-key")), check=True)
    stable = wait_ready(kubectl, ns, "bot")["status"]["revision"]["stable"]
    return stable, access_key(kubectl, ns, "bot")


def edit(kubectl: Kubectl, ns: str, patch: dict[str, Any]) -> None:
    kubectl("patch", "agent", "bot", "-n", ns, "--type=merge", "-p", json.dumps({"spec": patch}), check=True)


def wait_status(kubectl: Kubectl, ns: str, predicate: Any, what: str) -> dict[str, Any]:
    """The Agent's status once predicate(status) holds; on timeout the error shows the last one."""
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        nonlocal last
        last = get_json(kubectl, "agent", "bot", "-n", ns).get("status", {})
        return last if predicate(last) else None

    try:
        return wait_for(check, ROLLOUT_TIMEOUT, what)
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}\nlast status: {json.dumps(last, indent=1)}") from None


def measured(status: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return [m for m in status["rollout"].get("analysis", []) if m.get("metric") == metric]


def test_healthy_canary_is_promoted_by_the_in_cluster_prometheus_with_no_request_lost(
    kubectl: Kubectl, own_namespace: str, images: dict[str, str], tmp_path: Path
) -> None:
    ns = own_namespace
    stable, key = set_up(kubectl, ns, images, tmp_path)
    client = TrafficClient(
        kubectl,
        ns,
        images["RUNTIME_IMAGE"],
        "bot",
        api_key=key,
        message=QUESTION,
        until_revision="changed",
        max_seconds=ROLLOUT_TIMEOUT,
        pause_seconds=0.1,
    ).start()
    client.wait_started()

    edit(kubectl, ns, {"prompt": {"system": "You are a support assistant. Be brief."}})
    canary = wait_for(
        lambda: get_json(kubectl, "agent", "bot", "-n", ns)["status"]["revision"].get("canary"), 60, "a canary revision"
    )
    promoted = wait_status(
        kubectl, ns, lambda s: s["revision"]["stable"] == canary, "the analysis to promote the canary"
    )
    result = client.result(timeout=ROLLOUT_TIMEOUT + 60)

    assert canary != stable
    assert result.failed() == 0, result
    assert set(result.revisions) == {stable, canary}, "both tracks answered during the canary"
    assert promoted["rollout"]["phase"] == "Idle", promoted["rollout"]
    # The pass was decided on numbers Prometheus scraped from the canary pods, not on defaults.
    counts = measured(promoted, "requestCount")
    assert counts and float(counts[-1]["value"]) >= 10, promoted["rollout"]
    errors = measured(promoted, "errorRatio")
    assert errors and float(errors[-1]["value"]) == 0.0, promoted["rollout"]
    assert running_revisions(kubectl, ns, "bot") == {canary}


def test_canary_answering_5xx_is_rolled_back_on_the_error_ratio_prometheus_measured(
    kubectl: Kubectl, own_namespace: str, images: dict[str, str], tmp_path: Path
) -> None:
    ns = own_namespace
    stable, key = set_up(kubectl, ns, images, tmp_path)

    # The canary's model credential is wrong: the model refuses it, the runtime answers 502.
    edit(kubectl, ns, {"model": {"credentialsSecretRef": {"name": "llm-key-wrong", "key": "apiKey"}}})
    canary = wait_for(
        lambda: (
            (c := get_json(kubectl, "agent", "bot", "-n", ns)["status"]["revision"].get("canary"))
            and running_revisions(kubectl, ns, "bot") == {stable, c}
            and c
        ),
        120,
        "the canary pods running",
    )
    client = TrafficClient(
        kubectl,
        ns,
        images["RUNTIME_IMAGE"],
        "bot",
        api_key=key,
        message=QUESTION,
        until_revision=stable,
        max_seconds=ROLLOUT_TIMEOUT,
        pause_seconds=0.1,
    ).start()
    client.wait_started()
    aborted = wait_status(
        kubectl, ns, lambda s: s["rollout"]["phase"] == "Aborted", "the analysis to roll the canary back"
    )
    result = client.result(timeout=ROLLOUT_TIMEOUT + 60)

    assert aborted["revision"]["stable"] == stable and not aborted["revision"].get("canary"), aborted["revision"]
    assert aborted["rollout"]["abortedRevision"] == canary, aborted["rollout"]
    errors = measured(aborted, "errorRatio")
    assert errors and float(errors[-1]["value"]) > 0.05, aborted["rollout"]
    ready = next(c for c in aborted["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RolledBack"), ready
    assert "AnalysisFailed" in json.dumps(aborted["conditions"]) or "analysis failed" in aborted["rollout"]["message"]
    # The canary's pods really answered 5xx (their model refused them; every answer names its
    # revision), every 200 came from the stable track, and after the rollback only the stable track runs.
    assert result.codes.get("502", 0) > 0 and result.revisions.get(canary) == result.codes["502"], result
    assert result.revisions.get(stable) == result.codes.get("200"), result
    assert not result.errors, result
    assert running_revisions(kubectl, ns, "bot") == {stable}
