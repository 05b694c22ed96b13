"""Which revision each track runs: the bridge between the reconciler and the pure rollout package.

RollingUpdate: one track, always the revision the spec asks for. Canary: the stable track keeps its
revision at full size (so an abort is instant) while `<agent>-canary` runs the new one, sized by the
weight, until the state machine promotes or aborts."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from ..api.agent import RevisionStatus, RolloutStatus
from ..builders import names
from ..builders.agent_children import Track, desired_stable_replicas, track_from_config_map
from ..builders.agent_status import RolloutPlan
from ..builders.inputs import ResolvedAgent
from ..rollout import Observations, achieved_weight, decide, intents_from_annotations, replicas_for_weight
from . import metrics
from .context import Context

log = logging.getLogger(__name__)
HISTORY = 10


def _history(old_status: dict[str, Any], *revisions: str) -> list[str]:
    history: list[str] = []
    for rev in [*revisions, *old_status.get("revisionHistory", [])]:
        if rev and rev not in history:
            history.append(rev)
    return history[:HISTORY]


ChildLookup = Callable[[str, str], dict[str, Any] | None]  # (kind, name) → live child


def _template_revision(deployment: dict[str, Any] | None) -> str:
    if not deployment:
        return ""
    return (
        deployment.get("spec", {})
        .get("template", {})
        .get("metadata", {})
        .get("labels", {})
        .get(names.LABEL_REVISION, "")
    )


def _ready(deployment: dict[str, Any] | None) -> int:
    return (deployment or {}).get("status", {}).get("readyReplicas", 0)


def _available_at(deployment: dict[str, Any] | None, revision: str, count: int) -> bool:
    if deployment is None or _template_revision(deployment) != revision:
        return False
    status = deployment.get("status", {})
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and status.get("updatedReplicas", 0) >= count
        and status.get("availableReplicas", 0) >= count
    )


def _track_for(
    revision: str, current: Track, child: ChildLookup, agent: str, name: str, replicas: int | None
) -> Track | None:
    if revision == current.revision:
        return dataclasses.replace(current, name=name, replicas=replicas)
    config_map = child("ConfigMap", names.config_map(agent, revision))
    if config_map is None:
        return None
    return track_from_config_map(config_map, name, replicas)


async def plan_rollout(
    ctx: Context,
    agent: ResolvedAgent,
    old_status: dict[str, Any],
    current: Track,
    child: ChildLookup,
    annotations: dict[str, str],
    replicas: int | None,
) -> RolloutPlan:
    """replicas: the stable track's count to apply, None while someone else (an HPA) sets it."""
    spec = agent.spec
    autoscaled = replicas is None
    stable_dep = child("Deployment", agent.name)
    canary_spec = spec.rollout.canary if spec.rollout else None
    routed = bool(canary_spec and canary_spec.traffic_routing and canary_spec.traffic_routing.http_route)
    rolling = RolloutPlan(
        tracks=[dataclasses.replace(current, replicas=replicas)],
        history=_history(old_status, current.revision),
        split_services=routed,
    )
    if not (spec.rollout and spec.rollout.strategy == "Canary" and spec.rollout.canary):
        return rolling

    revisions = RevisionStatus.model_validate(old_status.get("revision") or {})
    rollout = RolloutStatus.model_validate(old_status.get("rollout") or {})
    if not revisions.stable:
        # Status lost (or first sight): what the stable Deployment runs is the truth.
        revisions = RevisionStatus(stable=_template_revision(stable_dep), canary=revisions.canary)
        if not revisions.stable:
            return rolling  # the very first revision rolls out directly
    stable_count = (stable_dep or {}).get("status", {}).get("replicas") if autoscaled else replicas
    stable_count = max(stable_count or desired_stable_replicas(spec), 1)
    canary_dep = child("Deployment", names.canary(agent.name))
    now = ctx.now()
    obs = Observations(
        desired_revision=current.revision,
        canary_ready=bool(revisions.canary)
        and _available_at(canary_dep, revisions.canary, replicas_for_weight(stable_count, rollout.weight)),
        intents=intents_from_annotations(annotations),
    )
    decision = decide(spec, revisions, rollout, obs, now)
    if decision.run_analysis and spec.rollout.canary.analysis and ctx.analysis is not None:
        measurements = await ctx.analysis.measure(
            namespace=agent.namespace,
            agent=agent.name,
            canary_revision=decision.revisions.canary,
            stable_revision=decision.revisions.stable,
            spec=spec.rollout.canary.analysis,
            now=now,
        )
        for m in measurements:
            metrics.ANALYSIS.labels(agent.namespace, agent.name, m.verdict).inc()
        decision = decide(
            spec, decision.revisions, decision.rollout, dataclasses.replace(obs, measurements=measurements), now
        )

    stable_track = _track_for(decision.revisions.stable, current, child, agent.name, "stable", replicas)
    if stable_track is None:
        log.warning(
            "revision %s of %s/%s has no ConfigMap any more; rolling to %s",
            decision.revisions.stable,
            agent.namespace,
            agent.name,
            current.revision,
        )
        return rolling
    tracks = [stable_track]
    canary_rev = decision.revisions.canary
    weight = decision.rollout.weight
    if canary_rev:
        canary_track = _track_for(
            canary_rev, current, child, agent.name, "canary", replicas_for_weight(stable_count, weight) if weight else 0
        )
        if canary_track is not None:
            tracks.append(canary_track)
    elif decision.promoted or (
        canary_dep is not None
        and _template_revision(canary_dep) == stable_track.revision
        and not _available_at(stable_dep, stable_track.revision, stable_count)
    ):
        # Just promoted: the canary pods already run the new stable revision; keep them serving until
        # the stable Deployment has rolled to it, so promotion never drops capacity.
        keep = (canary_dep or {}).get("spec", {}).get("replicas", 1)
        tracks.append(dataclasses.replace(stable_track, name="canary", replicas=keep))
        canary_rev = ""

    status = decision.rollout.to_wire()
    status["actualWeight"] = achieved_weight(_ready(stable_dep), _ready(canary_dep)) if canary_rev else 0
    plan = RolloutPlan(
        tracks=tracks,
        canary_revision=canary_rev,
        split_services=routed,
        rollout_status=status,
        history=_history(old_status, canary_rev, stable_track.revision),
        rollout_phase=decision.rollout.phase,  # builders/agent_status.py turns it into phase and health
        message=decision.rollout.message,
        events=list(decision.events),
        requeue_after=decision.requeue_after,
    )
    metrics.ROLLOUT_WEIGHT.labels(agent.namespace, agent.name).set(weight)
    for phase in ("Idle", "Progressing", "Paused", "Promoting", "Aborted"):
        metrics.ROLLOUT_PHASE.labels(agent.namespace, agent.name, phase).set(int(phase == decision.rollout.phase))
    return plan
