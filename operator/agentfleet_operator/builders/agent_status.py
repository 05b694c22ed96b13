"""What an Agent's status says, decided from plain data: its phase, its conditions (Ready, the kstatus
pair Reconciling/Stalled, ConnectorsReady, StateReady, RolloutHealthy, EgressReady) and the Events that
mark a change.

reconcile/agent.py resolves, plans, applies and observes (Deployments, the pods of a track that is not
available, the HTTPRoute); every rule that turns those observations into what a user reads is here, so
each one is tested on the situation it names (tests/unit/test_agent_status.py) without a cluster, and
the reconciler only writes the answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api import reasons
from ..api.agent import RolloutStatus
from . import names
from .agent_children import Track
from .conditions import Cond
from .egress import EgressPlan, summary
from .inputs import Resolution
from .pod_health import PodFailure

# While a track is not available, its pods are looked at this often even if no event arrives: a crash
# loop or a failed pull changes nothing in the Deployment's status, so no watch event would come.
UNAVAILABLE_RECHECK_SECONDS = 10.0
# Once a reason is reported, re-checks only refresh its message (restart counts); a fix arrives as an
# event (the spec, or the Deployment becoming available).
FAILING_RECHECK_SECONDS = 30.0

Event = tuple[str, str, str]  # (type, reason, message)

# The Agent's phase while its canary is in a rollout phase; Idle leaves it to the Deployment.
PHASE_OF_ROLLOUT = {"Progressing": "Progressing", "Promoting": "Progressing", "Paused": "Paused", "Aborted": "Degraded"}


@dataclass
class RolloutPlan:
    """Which revision each track runs and what the canary is doing (reconcile/rollout_plan.py)."""

    tracks: list[Track]  # first: stable
    canary_revision: str = ""
    split_services: bool = False
    rollout_status: dict[str, Any] = field(default_factory=lambda: RolloutStatus().to_wire())
    history: list[str] = field(default_factory=list)
    rollout_phase: str = "Idle"  # Idle | Progressing | Paused | Promoting | Aborted
    message: str = ""
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None

    @property
    def in_progress(self) -> bool:
        return self.rollout_phase in ("Progressing", "Promoting")


@dataclass(frozen=True)
class ReplicaTarget:
    """How many stable pods the Agent asks for, as the replica plan (builders/replicas.py) decided."""

    spec_replicas: int  # what the spec asks of the stable track (desired_stable_replicas)
    count: int | None = None  # what the operator sets on the stable Deployment; None while an HPA sets it
    min_replicas: int | None = None  # spec.autoscaling.minReplicas when autoscaled
    scaling: dict[str, Any] | None = None  # status.scaling, reported as the plan wrote it


@dataclass(frozen=True)
class ObservedAgent:
    """What was seen of one Agent: its last status, its Deployments and why pods cannot start."""

    name: str
    namespace: str
    old_status: Mapping[str, Any] = field(default_factory=dict)
    stable: dict[str, Any] | None = None  # Deployment <agent>
    canary: dict[str, Any] | None = None  # Deployment <agent>-canary
    pod_failures: Mapping[str, PodFailure] = field(default_factory=dict)  # track -> failure
    route_problem: Cond | None = None  # RolloutHealthy when the HTTPRoute could not be set
    tls: bool = False  # the Agent serves HTTPS (spec.access.tls): its endpoint is https://

    @property
    def endpoint(self) -> str:
        return names.endpoint(self.name, self.namespace, tls=self.tls)


@dataclass(frozen=True)
class StatusUpdate:
    fields: dict[str, Any]  # status fields besides observedGeneration and conditions
    conditions: list[Cond]
    events: list[Event]  # to post when the status changes
    error: str | None = None  # the reconcile's error reason for metrics; None when it went through
    requeue_after: float | None = None

    @property
    def phase(self) -> str:
        return str(self.fields["phase"])


def rolled_out(deployment: Mapping[str, Any] | None, revision: str, want: int | None) -> tuple[bool, int, int]:
    """(complete, replicas, ready) of a Deployment at a revision."""
    if deployment is None:
        return False, 0, 0
    status = deployment.get("status", {})
    replicas = status.get("replicas", 0)
    ready = status.get("readyReplicas", 0)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    spec_replicas = deployment.get("spec", {}).get("replicas", 1)
    target = spec_replicas if want is None else want
    labels = deployment["spec"]["template"]["metadata"].get("labels", {})
    complete = (
        labels.get(names.LABEL_REVISION) == revision
        and status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and updated >= target
        and available >= target
        and replicas == updated
    )
    return complete, replicas, ready


def deadline_exceeded(deployment: Mapping[str, Any] | None) -> str | None:
    for cond in (deployment or {}).get("status", {}).get("conditions", []):
        if cond.get("type") == "Progressing" and cond.get("status") == "False":
            return cond.get("message") or cond.get("reason", "")
    return None


def stable_target(observed: ObservedAgent, replicas: ReplicaTarget) -> int:
    """The stable pod count READY is measured against."""
    desired = (
        (observed.stable or {}).get("spec", {}).get("replicas", replicas.count if replicas.count is not None else 0)
    )
    if replicas.min_replicas is not None:
        # Until the autoscaler has scaled to its minimum, fewer pods than the Agent asks for are running.
        desired = max(desired, replicas.min_replicas)
    return int(desired)


def unavailable_tracks(observed: ObservedAgent, plan: RolloutPlan, replicas: ReplicaTarget) -> list[tuple[str, str]]:
    """(track, revision) of each track whose pods are not all available: the only ones whose pods the
    reconciler reads, so a fleet at rest lists no pods."""
    stable = plan.tracks[0]
    complete, _, ready = rolled_out(observed.stable, stable.revision, replicas.count)
    unavailable = [] if complete and ready >= stable_target(observed, replicas) else [("stable", stable.revision)]
    for track in plan.tracks[1:]:
        if track.replicas and not rolled_out(observed.canary, track.revision, track.replicas)[0]:
            unavailable.append((track.name, track.revision))
    return unavailable


def reference_conditions(res: Resolution) -> tuple[Cond, Cond]:
    """ConnectorsReady and StateReady from the resolution."""
    conn = res.first("connectors") or next((p for p in res.degraded if p.area == "connectors"), None)
    state = res.first("state") or next((p for p in res.degraded if p.area == "state"), None)
    connectors = (
        Cond("ConnectorsReady", False, conn.reason, conn.message)
        if conn
        else Cond("ConnectorsReady", True, reasons.RESOLVED, f"{len(res.connectors)} connector(s) resolved")
    )
    state_cond = (
        Cond("StateReady", False, state.reason, state.message)
        if state
        else Cond(
            "StateReady",
            True,
            reasons.RESOLVED if res.state else reasons.STATELESS,
            f"StatePolicy {res.state.name} resolved" if res.state else "no StatePolicy: each request stands alone",
        )
    )
    return connectors, state_cond


def rollout_health(plan: RolloutPlan) -> Cond:
    """RolloutHealthy as the canary's own phase has it (before the route and the pods are considered)."""
    if plan.rollout_phase == "Aborted":
        return Cond("RolloutHealthy", False, reasons.ROLLED_BACK, plan.message)
    if plan.rollout_phase == "Paused":
        return Cond("RolloutHealthy", True, reasons.CANARY_PAUSED, plan.message)
    if plan.in_progress:
        return Cond("RolloutHealthy", True, reasons.CANARY_PROGRESSING, plan.message)
    return Cond("RolloutHealthy", True, reasons.ROLLED_OUT, "no rollout in progress")


def egress_condition(egress: EgressPlan) -> Cond:
    """EgressReady: does the NetworkPolicy let the pods reach every place they call? Never part of Ready
    or the phase: where no NetworkPolicy is enforced (many clusters) the calls go through regardless,
    so a gap is told here and in a Warning Event, and the Agent serves."""
    if egress.gaps:
        return Cond("EgressReady", False, egress.gaps[0].reason, summary(egress.gaps))
    return Cond(
        "EgressReady",
        True,
        reasons.EGRESS_ALLOWED,
        f"the NetworkPolicy allows egress to DNS and to the {egress.reachable} place(s) the pods call, nothing else",
    )


def kept_egress(old_status: Mapping[str, Any]) -> Cond:
    """EgressReady when nothing was applied this time: the NetworkPolicy in place is the last one."""
    old = next((c for c in old_status.get("conditions", []) if c.get("type") == "EgressReady"), None)
    if old is None:
        return Cond("EgressReady", None, reasons.NOT_CHECKED, "the NetworkPolicy is made once the references resolve")
    status = {"True": True, "False": False}.get(old.get("status", ""))
    return Cond("EgressReady", status, old.get("reason", ""), old.get("message", ""))


def egress_events(old_status: Mapping[str, Any], egress: Cond) -> list[Event]:
    """A Warning when EgressReady turns False or changes its reason; nothing while it stays so."""
    old = next((c for c in old_status.get("conditions", []) if c.get("type") == "EgressReady"), {})
    if egress.status is False and (old.get("status"), old.get("reason")) != ("False", egress.reason):
        return [("Warning", egress.reason, egress.message)]
    return []


def columns(observed: ObservedAgent, desired: int) -> dict[str, Any]:
    """The printer columns (READY, ENDPOINT) and scale fields from what runs now. Every status write
    carries them, so an Agent that is Pending or Failed shows 0/2 and its endpoint, not blanks."""
    status = (observed.stable or {}).get("status", {})
    ready = status.get("readyReplicas", 0)
    return {
        "replicas": status.get("replicas", 0),
        "readyReplicas": ready,
        "ready": f"{ready}/{desired}",
        "selector": f"{names.LABEL_AGENT}={observed.name}",
        "endpoint": observed.endpoint,
    }


def transitions(old_status: Mapping[str, Any], events: Sequence[Event]) -> list[Event]:
    """Events mark transitions only: a warning whose reason Ready already shows was posted before, so a
    repeated reconcile with the same outcome posts nothing."""
    old_ready = next((c for c in old_status.get("conditions", []) if c.get("type") == "Ready"), {})
    repeated = ("False", old_ready.get("reason")) if old_ready.get("status") == "False" else None
    return [e for e in events if not (e[0] == "Warning" and ("False", e[1]) == repeated)]


def invalid_spec_status(observed: ObservedAgent, message: str) -> StatusUpdate:
    """The CRD schema refuses this at admission; reaching here means a schema older than the operator."""
    live = (observed.stable or {}).get("spec", {}).get("replicas", 0)
    return StatusUpdate(
        fields={"phase": "Failed", **columns(observed, live)},
        conditions=[
            Cond("Ready", False, reasons.INVALID_SPEC, message),
            Cond("Reconciling", False, reasons.INVALID_SPEC),
            Cond("Stalled", True, reasons.INVALID_SPEC, message),
        ],
        events=[],
        error=None,
    )


def apply_failed_status(
    observed: ObservedAgent, res: Resolution, replicas: ReplicaTarget, http_status: int, message: str
) -> StatusUpdate:
    """The API server refused a child. 400/403/422 do not pass by retrying (Stalled); others may."""
    reason = reasons.FORBIDDEN if http_status == 403 else reasons.APPLY_FAILED
    connectors_cond, state_cond = reference_conditions(res)
    return StatusUpdate(
        fields={"phase": "Failed", **columns(observed, replicas.spec_replicas)},
        conditions=[
            Cond("Ready", False, reason, message),
            Cond("Reconciling", True, reason, message),
            Cond("Stalled", http_status in (400, 403, 422), reason, message),
            connectors_cond,
            state_cond,
            Cond("RolloutHealthy", None, reason, "children could not be applied"),
            kept_egress(observed.old_status),
        ],
        events=[],
        error=reason,
    )


def _unresolved_status(observed: ObservedAgent, res: Resolution, replicas: ReplicaTarget) -> StatusUpdate:
    # Keep whatever runs (the last good revision) and say why nothing new can roll out.
    first = res.problems[0]
    connectors_cond, state_cond = reference_conditions(res)
    phase = "Degraded" if observed.stable is not None else "Pending"
    return StatusUpdate(
        fields={"phase": phase, **columns(observed, replicas.spec_replicas)},
        conditions=[
            Cond("Ready", False, first.reason, first.message),
            Cond("Reconciling", False, first.reason, "waiting for the reference to be fixed"),
            Cond("Stalled", True, first.reason, first.message),
            connectors_cond,
            state_cond,
            Cond("RolloutHealthy", None, first.reason, "no rollout while references are unresolved"),
            kept_egress(observed.old_status),
        ],
        events=transitions(observed.old_status, [("Warning", first.reason, first.message)]),
        error=first.reason,
    )


def agent_status(
    observed: ObservedAgent,
    plan: RolloutPlan | None,
    res: Resolution,
    replicas: ReplicaTarget,
    egress: EgressPlan | None = None,
) -> StatusUpdate:
    """The status an Agent reports and the events to post when it changes. `plan` is None only when
    references are unresolved (nothing was planned); `egress` is what its NetworkPolicy allows (None:
    as the stored status says)."""
    if res.problems or plan is None:
        return _unresolved_status(observed, res, replicas)
    name, old_status = observed.name, observed.old_status
    stable_track = plan.tracks[0]
    complete, pods, ready = rolled_out(observed.stable, stable_track.revision, replicas.count)
    stuck = deadline_exceeded(observed.stable)
    desired_count = stable_target(observed, replicas)
    health = observed.route_problem or rollout_health(plan)

    if stuck and not complete:
        ready_cond = Cond("Ready", False, reasons.DEPLOYMENT_UNAVAILABLE, f"Deployment {name}: {stuck}")
        reconciling = Cond("Reconciling", False, reasons.DEPLOYMENT_UNAVAILABLE, stuck)
        stalled = Cond("Stalled", True, reasons.DEPLOYMENT_UNAVAILABLE, stuck)
        phase = "Failed"
    elif complete and ready >= desired_count:
        ready_cond = Cond(
            "Ready",
            True,
            reasons.AGENT_READY,
            f"{ready}/{desired_count} pods ready at revision {stable_track.revision}",
        )
        reconciling = Cond(
            "Reconciling",
            plan.in_progress,
            reasons.CANARY_PROGRESSING if plan.in_progress else reasons.IDLE,
            plan.message,
        )
        stalled = Cond("Stalled", False, reasons.HEALTHY)
        phase = PHASE_OF_ROLLOUT.get(plan.rollout_phase) or "Ready"
    else:
        what = "rolling out" if observed.stable else "creating the Deployment"
        ready_cond = Cond(
            "Ready",
            False,
            reasons.ROLLOUT_IN_PROGRESS,
            f"{what}: {ready}/{desired_count} pods ready at revision {stable_track.revision}",
        )
        reconciling = Cond("Reconciling", True, reasons.ROLLOUT_IN_PROGRESS, ready_cond.message)
        stalled = Cond("Stalled", False, reasons.PROGRESSING)
        phase = PHASE_OF_ROLLOUT.get(plan.rollout_phase) or (
            "Progressing" if old_status.get("phase") not in (None, "Pending") else "Pending"
        )
    failures = observed.pod_failures
    failure = failures.get("stable") or failures.get("canary")
    if failure is not None:
        # kstatus: the rollout cannot progress without a change (image, spec, config), so Stalled, not
        # Reconciling. A failing canary leaves the stable pods serving: Degraded rather than Failed.
        ready_cond = Cond("Ready", False, failure.reason, failure.message)
        reconciling = Cond("Reconciling", False, failure.reason, "the pods cannot start until the Agent changes")
        stalled = Cond("Stalled", True, failure.reason, failure.message)
        phase = "Failed" if "stable" in failures and ready == 0 else "Degraded"
        if "stable" not in failures:
            health = Cond("RolloutHealthy", False, failure.reason, failure.message)
    if plan.rollout_phase == "Aborted":
        ready_cond = Cond("Ready", False, reasons.ROLLED_BACK, plan.message)
        phase = "Degraded"
    elif res.degraded and ready_cond.status:
        ready_cond = Cond("Ready", False, res.degraded[0].reason, res.degraded[0].message)
        phase = "Degraded"

    fields: dict[str, Any] = {
        "phase": phase,
        "replicas": pods,
        "readyReplicas": ready,
        "ready": f"{ready}/{desired_count}",
        "selector": f"{names.LABEL_AGENT}={name}",
        "endpoint": observed.endpoint,
        "revision": {"stable": stable_track.revision, "canary": plan.canary_revision},
        "rollout": plan.rollout_status,
        "revisionHistory": plan.history,
        "scaling": replicas.scaling,
    }
    events: list[Event] = []
    old_ready = next((c for c in old_status.get("conditions", []) if c.get("type") == "Ready"), None)
    if ready_cond.status and (old_ready is None or old_ready.get("status") != "True"):
        events.append(("Normal", reasons.AGENT_READY, ready_cond.message))
    if old_status.get("revision", {}).get("stable") not in (None, "", stable_track.revision):
        events.append(("Normal", reasons.REVISION_ROLLED_OUT, f"revision {stable_track.revision} is now stable"))
    events += plan.events
    if failure is not None:
        events.append(("Warning", failure.reason, failure.message))
    connectors_cond, state_cond = reference_conditions(res)
    egress_cond = egress_condition(egress) if egress is not None else kept_egress(old_status)
    return StatusUpdate(
        fields=fields,
        conditions=[ready_cond, reconciling, stalled, connectors_cond, state_cond, health, egress_cond],
        events=transitions(old_status, events) + egress_events(old_status, egress_cond),
        error=None,
        requeue_after=_requeue(plan, bool(unavailable_tracks(observed, plan, replicas)), failure),
    )


def _requeue(plan: RolloutPlan, unavailable: bool, failure: PodFailure | None) -> float | None:
    if not unavailable:
        return plan.requeue_after
    recheck = FAILING_RECHECK_SECONDS if failure is not None else UNAVAILABLE_RECHECK_SECONDS
    return recheck if plan.requeue_after is None else min(plan.requeue_after, recheck)
