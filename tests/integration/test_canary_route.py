"""Exact canary weights on a Gateway API HTTPRoute (the real CRD, from the gateway-api Go module)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import apply, get, ready, rules_agent, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
GATEWAY_API = "sigs.k8s.io/gateway-api@v1.2.1"


@pytest.fixture(scope="module")
def httproute_crd(kubectl: Kubectl) -> None:
    if shutil.which("go") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("go is needed to fetch the Gateway API CRDs")
        pytest.skip("go not found: cannot fetch the Gateway API CRDs")
    download = subprocess.run(
        ["go", "mod", "download", "-json", GATEWAY_API],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, GOFLAGS="-mod=mod"),
    )
    assert download.returncode == 0, download.stderr
    crd = Path(json.loads(download.stdout)["Dir"]) / "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd), check=True)
    kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/httproutes.gateway.networking.k8s.io", check=True
    )


def _weights(kubectl: Kubectl, namespace: str) -> list[tuple[str, int]]:
    route = get(kubectl, "httproute", "bot-route", namespace) or {}
    refs = route.get("spec", {}).get("rules", [{}])[0].get("backendRefs", [])
    return [(ref["name"], ref.get("weight", 1)) for ref in refs]


def test_weights_are_set_exactly_on_the_route(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, httproute_crd: None
) -> None:
    route: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "bot-route"},
        "spec": {
            "parentRefs": [{"name": "public-gateway"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/bot"}}],
                    "backendRefs": [{"name": "bot", "port": 8080}],
                }
            ],
        },
    }
    canary = {
        "strategy": "Canary",
        "canary": {"steps": [{"setWeight": 30}, {"pause": {}}], "trafficRouting": {"httpRoute": {"name": "bot-route"}}},
    }
    agent = rules_agent("bot", replicas=2, rollout=canary)
    apply(kubectl, namespace, route, agent)
    first = wait_for("Ready", lambda: ready(kubectl, "bot", namespace))["status"]["revision"]["stable"]
    wait_for("stable gets all traffic", lambda: _weights(kubectl, namespace) == [("bot-stable", 100)])
    assert get(kubectl, "service", "bot-stable", namespace)["spec"]["selector"]["agentfleet.dev/track"] == "stable"
    assert get(kubectl, "service", "bot-canary", namespace)["spec"]["selector"]["agentfleet.dev/track"] == "canary"

    agent["spec"]["prompt"]["system"] = "You greet warmly."
    apply(kubectl, namespace, agent)
    wait_for("70/30 on the route", lambda: _weights(kubectl, namespace) == [("bot-stable", 70), ("bot-canary", 30)])
    status = wait_for(
        "paused",
        lambda: (
            (a := get(kubectl, "agent", "bot", namespace))
            and a["status"]["rollout"]["phase"] == "Paused"
            and a["status"]
        ),
    )
    assert status["rollout"]["weight"] == 30 and status["rollout"]["actualWeight"] == 30
    assert status["revision"]["stable"] == first and status["revision"]["canary"] not in ("", first)
    # The rest of the route is the user's and stays as written.
    kept = get(kubectl, "httproute", "bot-route", namespace)["spec"]
    assert kept["rules"][0]["matches"][0]["path"]["value"] == "/bot"

    kubectl("annotate", "agt", "bot", "-n", namespace, "--overwrite", "agentfleet.dev/promote=full", check=True)
    promoted = wait_for(
        "promoted",
        lambda: (
            (a := ready(kubectl, "bot", namespace))
            and a["status"]["revision"]["stable"] == status["revision"]["canary"]
            and a
        ),
    )
    assert promoted["status"]["revision"]["canary"] == ""
    wait_for("all traffic back on stable", lambda: _weights(kubectl, namespace) == [("bot-stable", 100)])
