"""A runtime that cannot start is reported, with the kubelet's reason, on the real node.

Each test makes an Agent whose pods cannot start for a reason users meet (an image that cannot be
pulled, a key the runtime refuses, a memory limit the runtime cannot start in) and waits
for Ready=False with that reason, Stalled=True, the reason in `kubectl describe` and a Warning
Event; a crash loop is then fixed in the spec and the Agent becomes Ready. Nothing here sends an
event to the operator when a pod's state changes: the reason has to arrive through its own re-checks.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.e2e.traffic import apply, condition, get_json, rules_agent, wait_for
from tests.integration.conftest import Kubectl

# Pulls fail at once on this node (registries resolve to a closed local port), a crash at start
# takes a few seconds; the operator re-checks an unavailable Agent well within this.
FAILURE_TIMEOUT = 120
READY_TIMEOUT = 180
PULL_REASONS = {"ImagePullBackOff", "ErrImagePull"}


def _dump(kubectl: Kubectl, namespace: str, name: str) -> str:
    status = json.dumps(get_json(kubectl, "agent", name, "-n", namespace).get("status"), indent=1)
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"agentfleet.dev/agent={name}")["items"]
    states = json.dumps([p["status"].get("containerStatuses") for p in pods], indent=1)
    return f"status: {status}\ncontainer statuses: {states}"


def wait_condition(
    kubectl: Kubectl, namespace: str, name: str, ready: str, reasons: set[str] | None, timeout: float
) -> dict[str, Any]:
    """The Agent once its current generation shows Ready=<ready> (with one of `reasons`, if given)."""

    def seen() -> dict[str, Any] | None:
        agent = get_json(kubectl, "agent", name, "-n", namespace)
        current = agent.get("status", {}).get("observedGeneration") == agent["metadata"]["generation"]
        cond = condition(agent, "Ready")
        if current and cond.get("status") == ready and (reasons is None or cond.get("reason") in reasons):
            return agent
        return None

    try:
        return wait_for(seen, timeout, f"Agent {namespace}/{name} Ready={ready} {sorted(reasons or [])}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_dump(kubectl, namespace, name)}") from None


def pod_names(kubectl: Kubectl, namespace: str, agent: str) -> set[str]:
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"agentfleet.dev/agent={agent}")["items"]
    return {p["metadata"]["name"] for p in pods}


def warning_reasons(kubectl: Kubectl, namespace: str, agent: str) -> list[str]:
    events = get_json(
        kubectl,
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.kind=Agent,involvedObject.name={agent},type=Warning",
    )["items"]
    return [e["reason"] for e in events]


def assert_reported(kubectl: Kubectl, namespace: str, name: str, agent: dict[str, Any], reason: str) -> None:
    """What a user looking at the Agent sees: the reason, the pod it comes from, Stalled, an Event."""
    ready = condition(agent, "Ready")
    assert any(pod in ready["message"] for pod in pod_names(kubectl, namespace, name)), ready
    assert "container agent" in ready["message"], ready
    assert condition(agent, "Stalled")["status"] == "True", agent["status"]
    assert condition(agent, "Reconciling")["status"] == "False", agent["status"]
    assert agent["status"]["phase"] == "Failed", agent["status"]  # no pod of the Agent serves
    assert agent["status"]["ready"] == "0/1"
    described = kubectl("describe", "agent", name, "-n", namespace, check=True).stdout
    conditions_part = described.split("Conditions:", 1)[-1].split("Events:", 1)[0]
    assert re.search(rf"^\s+Reason:\s+{reason}$", conditions_part, re.MULTILINE), described
    # The Warning Event is posted once per reason; it shows under the describe output's Events.
    wait_for(lambda: reason in warning_reasons(kubectl, namespace, name), 30, f"a Warning Event {reason}")
    events_part = kubectl("describe", "agent", name, "-n", namespace, check=True).stdout.split("Events:", 1)[-1]
    assert "Warning" in events_part and reason in events_part, events_part


def test_an_image_that_cannot_be_pulled_is_the_ready_reason(kubectl: Kubectl, e2e_namespace: str) -> None:
    ns = e2e_namespace
    apply(kubectl, rules_agent("nopull", ns, image="ghcr.io/agentfleet/does-not-exist:0"))

    agent = wait_condition(kubectl, ns, "nopull", "False", PULL_REASONS, FAILURE_TIMEOUT)

    reason = condition(agent, "Ready")["reason"]
    assert "ghcr.io/agentfleet/does-not-exist:0" in condition(agent, "Ready")["message"]
    assert_reported(kubectl, ns, "nopull", agent, reason)
    # Pull errors alternate ErrImagePull / ImagePullBackOff as the kubelet retries: one Event each at most
    # while nothing else changes, not one per re-check.
    reasons = warning_reasons(kubectl, ns, "nopull")
    assert all(reasons.count(r) <= 3 for r in PULL_REASONS), reasons


def test_a_configuration_the_runtime_refuses_is_a_crash_loop_until_it_is_fixed(
    kubectl: Kubectl, e2e_namespace: str
) -> None:
    ns = e2e_namespace
    # Session encryption whose key Secret has the key but no bytes in it (a secret sync that wrote an
    # empty value): admission and the operator accept it (the key exists), the runtime refuses to start
    # without key material and exits with its configuration error, exit code 2.
    apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "state-key", "namespace": ns},
            "stringData": {"key": ""},
        },
    )
    apply(
        kubectl,
        {
            "apiVersion": "agentfleet.dev/v1alpha1",
            "kind": "StatePolicy",
            "metadata": {"name": "sessions", "namespace": ns},
            "spec": {"store": {"type": "memory"}, "encryption": {"keySecretRef": {"name": "state-key", "key": "key"}}},
        },
    )
    apply(kubectl, rules_agent("nokey", ns, statePolicyRef={"name": "sessions"}))

    agent = wait_condition(kubectl, ns, "nokey", "False", {"CrashLoopBackOff"}, FAILURE_TIMEOUT)

    assert "exit code 2" in condition(agent, "Ready")["message"], condition(agent, "Ready")
    assert_reported(kubectl, ns, "nokey", agent, "CrashLoopBackOff")

    # The fix: key material in the Secret. Its hash is part of the revision, so new pods roll out.
    apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "state-key", "namespace": ns},
            "stringData": {"key": "0123456789abcdef0123456789abcdef"},
        },
    )
    fixed = wait_condition(kubectl, ns, "nokey", "True", None, READY_TIMEOUT)
    assert fixed["status"]["revision"]["stable"] != agent["status"]["revision"]["stable"]
    assert condition(fixed, "Stalled")["status"] == "False", fixed["status"]
    assert condition(fixed, "Reconciling")["status"] == "False", fixed["status"]
    assert fixed["status"]["phase"] == "Ready"


def test_a_rule_the_runtime_could_not_compile_is_an_invalid_spec(kubectl: Kubectl, e2e_namespace: str) -> None:
    ns = e2e_namespace
    # The CRD takes any pattern up to 1024 characters; Python's `re` (the runtime's) refuses this one.
    # Before the model checked it, the Agent's reconcile failed on every retry and it showed no status.
    broken = rules_agent("badrule", ns)
    broken["spec"]["model"]["rules"] = [{"pattern": "([unclosed", "reply": "never"}]
    apply(kubectl, broken)

    agent = wait_condition(kubectl, ns, "badrule", "False", {"InvalidSpec"}, FAILURE_TIMEOUT)

    assert "spec.model.rules.0.pattern" in condition(agent, "Ready")["message"], condition(agent, "Ready")
    assert condition(agent, "Stalled")["status"] == "True"
    assert not pod_names(kubectl, ns, "badrule"), "nothing is deployed for a spec the runtime cannot load"


def test_a_memory_limit_the_runtime_cannot_start_in_is_reported_as_oom_killed(
    kubectl: Kubectl, e2e_namespace: str
) -> None:
    ns = e2e_namespace
    tiny = {"requests": {"cpu": "50m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}}
    apply(kubectl, rules_agent("tiny", ns, resources=tiny))

    agent = wait_condition(kubectl, ns, "tiny", "False", {"OOMKilled"}, FAILURE_TIMEOUT)

    assert "exit code 137" in condition(agent, "Ready")["message"], condition(agent, "Ready")
    assert_reported(kubectl, ns, "tiny", agent, "OOMKilled")
