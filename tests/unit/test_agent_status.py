"""agent_status: the Agent's phase, conditions and Events from what was observed, one row a situation.

Each row is a situation a user meets (a Connector missing, a crash loop, a paused canary, ...) given as
the plain data the reconciler hands over: the Deployments as the API server shows them, the pod
failures builders/pod_health.py found, the rollout plan and the resolution of the references. The
Deployment shapes are trimmed to the fields kube-controller-manager writes (v1.33)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from agentfleet_operator.api import reasons
from agentfleet_operator.builders.agent_children import Track
from agentfleet_operator.builders.agent_status import (
    FAILING_RECHECK_SECONDS,
    UNAVAILABLE_RECHECK_SECONDS,
    ObservedAgent,
    ReplicaTarget,
    RolloutPlan,
    StatusUpdate,
    agent_status,
    apply_failed_status,
    invalid_spec_status,
    unavailable_tracks,
)
from agentfleet_operator.builders.conditions import Cond
from agentfleet_operator.builders.inputs import Problem, Resolution
from agentfleet_operator.builders.pod_health import PodFailure
from agentfleet_operator.builders.secret_check import secret_problem

STABLE, CANARY = "5d41402a", "9f86d081"
DEADLINE = 'ReplicaSet "bot-7d9c5b6f4" has timed out progressing.'
CRASH = PodFailure(
    "CrashLoopBackOff",
    "pod bot-7d9c5b6f4-x2x9q container agent: CrashLoopBackOff: Error, exit code 2, restarted 3 time(s)",
    "bot-7d9c5b6f4-x2x9q",
    "agent",
)
PULL = PodFailure(
    "ErrImagePull",
    'pod bot-canary-6b8f-q7k2z container agent: ErrImagePull: failed to pull "ghcr.io/agentfleet/does-not-exist:0"',
    "bot-canary-6b8f-q7k2z",
    "agent",
)


def deployment(
    revision: str = STABLE,
    *,
    spec_replicas: int = 2,
    ready: int | None = None,
    available: int | None = None,
    generation: int = 1,
    observed_generation: int | None = None,
    stuck: bool = False,
    name: str = "bot",
) -> dict[str, Any]:
    """A Deployment of the Agent; by default fully rolled out at `revision`."""
    ready = spec_replicas if ready is None else ready
    available = ready if available is None else available
    status: dict[str, Any] = {
        "observedGeneration": generation if observed_generation is None else observed_generation,
        "replicas": spec_replicas,
        "updatedReplicas": spec_replicas,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available >= spec_replicas else "False",
                "reason": "MinimumReplicasAvailable",
            }
        ],
    }
    if stuck:
        status["conditions"].append(
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": DEADLINE}
        )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "support", "generation": generation},
        "spec": {
            "replicas": spec_replicas,
            "template": {"metadata": {"labels": {"agentfleet.dev/revision": revision}}},
        },
        "status": status,
    }


def ready_status(revision: str = STABLE) -> dict[str, Any]:
    """The status of an Agent that was Ready at `revision` on the last reconcile."""
    return {
        "phase": "Ready",
        "revision": {"stable": revision, "canary": ""},
        "conditions": [{"type": "Ready", "status": "True", "reason": reasons.AGENT_READY}],
    }


def rollout(
    phase: str = "Idle",
    message: str = "",
    *,
    canary_replicas: int = 0,
    events: list[tuple[str, str, str]] | None = None,
) -> RolloutPlan:
    tracks = [Track("stable", STABLE, "runtime:1", {})]
    if canary_replicas:
        tracks.append(Track("canary", CANARY, "runtime:2", {}, replicas=canary_replicas))
    return RolloutPlan(
        tracks=tracks,
        canary_revision=CANARY if canary_replicas else "",
        rollout_phase=phase,
        message=message,
        events=list(events or []),
    )


def unresolved(area: str, reason: str, message: str) -> Resolution:
    return Resolution(problems=[Problem(area, reason, message)])


@dataclass
class Row:
    """One situation and what the Agent must then say."""

    observed: ObservedAgent
    plan: RolloutPlan | None
    resolution: Resolution
    phase: str
    ready: tuple[bool | None, str]  # Ready's (status, reason)
    events: list[tuple[str, str]]  # (type, reason) in order
    replicas: ReplicaTarget = field(default_factory=lambda: ReplicaTarget(spec_replicas=2, count=2))
    also: dict[str, tuple[bool | None, str]] = field(default_factory=dict)  # other conditions' (status, reason)
    ready_column: str | None = None
    requeue_after: float | None = None


def observed(stable: dict[str, Any] | None = None, old: dict[str, Any] | None = None, **more: Any) -> ObservedAgent:
    return ObservedAgent("bot", "support", old or {}, stable=stable, **more)


SECRET_KEY_MISSING = secret_problem(
    {"keys": ["token"], "hash": "ab12"}, "support", "llm-key", ["apiKey"], "model credentials"
)
assert SECRET_KEY_MISSING is not None

ROWS = {
    "missing Connector, nothing deployed yet": Row(
        observed(),
        None,
        unresolved("connectors", reasons.CONNECTOR_NOT_FOUND, "Connector crm not found in namespace support"),
        phase="Pending",
        ready=(False, reasons.CONNECTOR_NOT_FOUND),
        events=[("Warning", reasons.CONNECTOR_NOT_FOUND)],
        also={
            "ConnectorsReady": (False, reasons.CONNECTOR_NOT_FOUND),
            "Stalled": (True, reasons.CONNECTOR_NOT_FOUND),
            "Reconciling": (False, reasons.CONNECTOR_NOT_FOUND),
            "StateReady": (True, reasons.STATELESS),
            "RolloutHealthy": (None, reasons.CONNECTOR_NOT_FOUND),
        },
        ready_column="0/2",
    ),
    "missing Secret key while the last good revision runs": Row(
        observed(deployment(), ready_status()),
        None,
        unresolved("secrets", *SECRET_KEY_MISSING),
        phase="Degraded",
        ready=(False, reasons.SECRET_KEY_MISSING),
        events=[("Warning", reasons.SECRET_KEY_MISSING)],
        also={"ConnectorsReady": (True, reasons.RESOLVED)},
        ready_column="2/2",
    ),
    "missing Secret key reported before: no second Warning": Row(
        observed(
            deployment(),
            {
                "phase": "Degraded",
                "conditions": [{"type": "Ready", "status": "False", "reason": reasons.SECRET_KEY_MISSING}],
            },
        ),
        None,
        unresolved("secrets", *SECRET_KEY_MISSING),
        phase="Degraded",
        ready=(False, reasons.SECRET_KEY_MISSING),
        events=[],
    ),
    "Deployment progress deadline exceeded": Row(
        observed(deployment(ready=0, stuck=True), ready_status()),
        rollout(),
        Resolution(),
        phase="Failed",
        ready=(False, reasons.DEPLOYMENT_UNAVAILABLE),
        events=[],
        also={
            "Stalled": (True, reasons.DEPLOYMENT_UNAVAILABLE),
            "Reconciling": (False, reasons.DEPLOYMENT_UNAVAILABLE),
        },
        ready_column="0/2",
        requeue_after=UNAVAILABLE_RECHECK_SECONDS,
    ),
    "stable pods crash-looping": Row(
        observed(deployment(ready=0), ready_status(), pod_failures={"stable": CRASH}),
        rollout(),
        Resolution(),
        phase="Failed",
        ready=(False, "CrashLoopBackOff"),
        events=[("Warning", "CrashLoopBackOff")],
        also={
            "Stalled": (True, "CrashLoopBackOff"),
            "Reconciling": (False, "CrashLoopBackOff"),
            "RolloutHealthy": (True, reasons.ROLLED_OUT),
        },
        requeue_after=FAILING_RECHECK_SECONDS,
    ),
    "canary image pull failing while stable serves": Row(
        observed(
            deployment(),
            ready_status(),
            canary=deployment(CANARY, spec_replicas=1, ready=0, name="bot-canary"),
            pod_failures={"canary": PULL},
        ),
        rollout("Progressing", "step 1/4: weight 10", canary_replicas=1),
        Resolution(),
        phase="Degraded",
        ready=(False, "ErrImagePull"),
        events=[("Warning", "ErrImagePull")],
        also={"RolloutHealthy": (False, "ErrImagePull"), "Stalled": (True, "ErrImagePull")},
        requeue_after=FAILING_RECHECK_SECONDS,
    ),
    "canary paused for promotion": Row(
        observed(deployment(), ready_status(), canary=deployment(CANARY, spec_replicas=1, name="bot-canary")),
        rollout("Paused", "paused at step 2: waiting for promote", canary_replicas=1),
        Resolution(),
        phase="Paused",
        ready=(True, reasons.AGENT_READY),
        events=[],
        also={
            "RolloutHealthy": (True, reasons.CANARY_PAUSED),
            "Reconciling": (False, reasons.IDLE),
            "Stalled": (False, reasons.HEALTHY),
        },
    ),
    "canary progressing": Row(
        observed(deployment(), ready_status(), canary=deployment(CANARY, spec_replicas=1, name="bot-canary")),
        rollout(
            "Progressing",
            "step 1/4: weight 10",
            canary_replicas=1,
            events=[("Normal", reasons.CANARY_STARTED, "canary 9f86d081 started")],
        ),
        Resolution(),
        phase="Progressing",
        ready=(True, reasons.AGENT_READY),
        events=[("Normal", reasons.CANARY_STARTED)],
        also={"RolloutHealthy": (True, reasons.CANARY_PROGRESSING), "Reconciling": (True, reasons.CANARY_PROGRESSING)},
    ),
    "canary aborted and rolled back": Row(
        observed(deployment(), ready_status()),
        rollout(
            "Aborted",
            "analysis failed twice: error ratio 0.31 > 0.05",
            events=[("Warning", reasons.ROLLED_BACK, "canary 9f86d081 rolled back")],
        ),
        Resolution(),
        phase="Degraded",
        ready=(False, reasons.ROLLED_BACK),
        events=[("Warning", reasons.ROLLED_BACK)],
        also={"RolloutHealthy": (False, reasons.ROLLED_BACK), "Stalled": (False, reasons.HEALTHY)},
    ),
    "autoscaled, at its minimum": Row(
        observed(deployment(spec_replicas=3), ready_status()),
        rollout(),
        Resolution(),
        replicas=ReplicaTarget(spec_replicas=3, count=None, min_replicas=3),
        phase="Ready",
        ready=(True, reasons.AGENT_READY),
        events=[],
        ready_column="3/3",
    ),
    "autoscaled, below its minimum (HPA not caught up)": Row(
        observed(deployment(spec_replicas=2), ready_status()),
        rollout(),
        Resolution(),
        replicas=ReplicaTarget(spec_replicas=3, count=None, min_replicas=3),
        phase="Progressing",
        ready=(False, reasons.ROLLOUT_IN_PROGRESS),
        events=[],
        ready_column="2/3",
        requeue_after=UNAVAILABLE_RECHECK_SECONDS,
    ),
    "scaled to zero": Row(
        observed(deployment(spec_replicas=0), ready_status()),
        rollout(),
        Resolution(),
        replicas=ReplicaTarget(spec_replicas=0, count=0),
        phase="Ready",
        ready=(True, reasons.AGENT_READY),
        events=[],
        ready_column="0/0",
    ),
    "all healthy, first time Ready": Row(
        observed(deployment(), {"phase": "Pending"}),
        rollout(),
        Resolution(),
        phase="Ready",
        ready=(True, reasons.AGENT_READY),
        events=[("Normal", reasons.AGENT_READY)],
        also={
            "Reconciling": (False, reasons.IDLE),
            "Stalled": (False, reasons.HEALTHY),
            "RolloutHealthy": (True, reasons.ROLLED_OUT),
        },
        ready_column="2/2",
    ),
    "all healthy again: nothing to announce": Row(
        observed(deployment(), ready_status()),
        rollout(),
        Resolution(),
        phase="Ready",
        ready=(True, reasons.AGENT_READY),
        events=[],
    ),
    "new revision became stable": Row(
        observed(deployment(), ready_status("0cc175b9")),
        rollout(),
        Resolution(),
        phase="Ready",
        ready=(True, reasons.AGENT_READY),
        events=[("Normal", reasons.REVISION_ROLLED_OUT)],
    ),
    "generation not yet observed by the Deployment controller": Row(
        observed(deployment(generation=3, observed_generation=2), ready_status()),
        rollout(),
        Resolution(),
        phase="Progressing",
        ready=(False, reasons.ROLLOUT_IN_PROGRESS),
        events=[],
        also={"Reconciling": (True, reasons.ROLLOUT_IN_PROGRESS), "Stalled": (False, reasons.PROGRESSING)},
        requeue_after=UNAVAILABLE_RECHECK_SECONDS,
    ),
    "first Deployment not created yet": Row(
        observed(None),
        rollout(),
        Resolution(),
        phase="Pending",
        ready=(False, reasons.ROLLOUT_IN_PROGRESS),
        events=[],
        ready_column="0/2",
        requeue_after=UNAVAILABLE_RECHECK_SECONDS,
    ),
    "StatePolicy store not ready: usable, but Degraded": Row(
        observed(deployment(), ready_status()),
        rollout(),
        Resolution(degraded=[Problem("state", reasons.STATE_STORE_NOT_READY, "StatePolicy chat: no ready pod")]),
        phase="Degraded",
        ready=(False, reasons.STATE_STORE_NOT_READY),
        events=[],
        also={"StateReady": (False, reasons.STATE_STORE_NOT_READY)},
    ),
    "HTTPRoute missing during a canary": Row(
        observed(
            deployment(),
            ready_status(),
            canary=deployment(CANARY, spec_replicas=1, name="bot-canary"),
            route_problem=Cond("RolloutHealthy", False, reasons.HTTP_ROUTE_NOT_FOUND, "HTTPRoute bot not found"),
        ),
        rollout("Progressing", "step 1/4: weight 10", canary_replicas=1),
        Resolution(),
        phase="Progressing",
        ready=(True, reasons.AGENT_READY),
        events=[],
        also={"RolloutHealthy": (False, reasons.HTTP_ROUTE_NOT_FOUND)},
    ),
}


def conditions(update: StatusUpdate) -> dict[str, tuple[bool | None, str]]:
    return {c.type: (c.status, c.reason) for c in update.conditions}


@pytest.mark.parametrize("row", ROWS.values(), ids=list(ROWS))
def test_agent_status(row: Row) -> None:
    update = agent_status(row.observed, row.plan, row.resolution, row.replicas)
    conds = conditions(update)
    assert update.phase == row.phase
    assert conds["Ready"] == row.ready
    assert [(type_, reason) for type_, reason, _ in update.events] == row.events
    for type_, expected in row.also.items():
        assert conds[type_] == expected, type_
    if row.ready_column is not None:
        assert update.fields["ready"] == row.ready_column
    assert update.requeue_after == row.requeue_after
    # The kstatus pair never says both "working on it" and "stuck".
    assert not (conds["Reconciling"][0] and conds["Stalled"][0])
    assert [c.type for c in update.conditions] == [
        "Ready",
        "Reconciling",
        "Stalled",
        "ConnectorsReady",
        "StateReady",
        "RolloutHealthy",
        "EgressReady",
    ]


def test_unresolved_reference_names_the_fix_and_reports_an_error() -> None:
    update = agent_status(
        *[
            ROWS["missing Secret key while the last good revision runs"].__dict__[k]
            for k in ("observed", "plan", "resolution", "replicas")
        ]
    )
    ready = update.conditions[0]
    assert ready.message == "Secret llm-key (model credentials) has no key apiKey"
    assert update.error == reasons.SECRET_KEY_MISSING
    assert "revision" not in update.fields  # an early write keeps the last known revision


def test_rolled_out_status_carries_revision_rollout_and_columns() -> None:
    plan = rollout("Progressing", "step 1/4: weight 10", canary_replicas=1)
    update = agent_status(
        observed(deployment(), ready_status(), canary=deployment(CANARY, spec_replicas=1, name="bot-canary")),
        plan,
        Resolution(),
        ReplicaTarget(spec_replicas=2, count=2, scaling={"owner": "Deployment"}),
    )
    assert update.fields["revision"] == {"stable": STABLE, "canary": CANARY}
    assert update.fields["endpoint"] == "http://bot.support.svc:8080"
    assert update.fields["selector"] == "agentfleet.dev/agent=bot"
    assert update.fields["scaling"] == {"owner": "Deployment"}
    assert update.fields["rollout"] is plan.rollout_status
    assert update.error is None


def test_only_unavailable_tracks_have_their_pods_read() -> None:
    plan = rollout("Progressing", canary_replicas=1)
    target = ReplicaTarget(spec_replicas=2, count=2)
    at_rest = observed(deployment(), canary=deployment(CANARY, spec_replicas=1, name="bot-canary"))
    assert unavailable_tracks(at_rest, plan, target) == []
    starting = observed(deployment(ready=1), canary=deployment(CANARY, spec_replicas=1, ready=0, name="bot-canary"))
    assert unavailable_tracks(starting, plan, target) == [("stable", STABLE), ("canary", CANARY)]


def test_invalid_spec_is_stalled_with_the_live_count() -> None:
    update = invalid_spec_status(observed(deployment(spec_replicas=3)), "spec.model.temperature: too high")
    assert update.phase == "Failed"
    assert conditions(update) == {
        "Ready": (False, reasons.INVALID_SPEC),
        "Reconciling": (False, reasons.INVALID_SPEC),
        "Stalled": (True, reasons.INVALID_SPEC),
    }
    assert update.fields["ready"] == "3/3"
    assert update.events == []


@pytest.mark.parametrize(
    ("http_status", "reason", "stalled"),
    [(403, reasons.FORBIDDEN, True), (422, reasons.APPLY_FAILED, True), (500, reasons.APPLY_FAILED, False)],
)
def test_apply_failure(http_status: int, reason: str, stalled: bool) -> None:
    update = apply_failed_status(observed(None), Resolution(), ReplicaTarget(spec_replicas=2), http_status, "denied")
    conds = conditions(update)
    assert update.phase == "Failed"
    assert conds["Ready"] == (False, reason)
    assert conds["Stalled"] == (stalled, reason)
    assert conds["Reconciling"] == (True, reason)
    assert update.error == reason


@pytest.mark.parametrize(
    ("found", "what", "needs", "expected"),
    [
        (None, "Redis password", "", (reasons.SECRET_NOT_FOUND, "Secret s (Redis password) not found in namespace ns")),
        (None, None, "", (reasons.SECRET_NOT_FOUND, "Secret s not found in namespace ns")),
        (
            {"keys": ["a"]},
            "encryption key",
            "",
            (reasons.SECRET_KEY_MISSING, "Secret s (encryption key) has no key b, c"),
        ),
        (
            {"keys": ["a"]},
            None,
            "auth type basic needs username, password",
            (reasons.SECRET_KEY_MISSING, "Secret s has no key b, c (auth type basic needs username, password)"),
        ),
        ({"keys": ["a", "b", "c"]}, "caller keys", "", None),
    ],
)
def test_secret_problem(
    found: dict[str, Any] | None, what: str | None, needs: str, expected: tuple[str, str] | None
) -> None:
    assert secret_problem(found, "ns", "s", ["a", "b", "c"], what, needs) == expected
