"""Reconcile one Agent: resolve references, render the revision, apply the children that differ,
prune the ones no longer wanted, and report truthfully what runs."""

from __future__ import annotations

import logging
import secrets as random_secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..api import reasons
from ..api.agent import AgentSpec, AgentStatus, ScalingStatus
from ..api.base import API_VERSION
from ..builders import agent_children as children
from ..builders import names, traffic_route
from ..builders.conditions import Cond, merge_conditions, status_patch
from ..builders.desired_children import ChildrenPlan, desired_children
from ..builders.drift import needs_apply
from ..builders.inputs import ResolvedAgent
from ..builders.pod_health import PodFailure, pod_failure
from ..builders.replicas import HANDOVER_MANAGER, ReplicaPlan, plan_replicas
from ..builders.revision import revision_hash
from ..builders.runtime_config import build_runtime_config, revision_inputs, secret_mounts
from ..kube.client import ApiError
from . import metrics
from .context import Context, rfc3339
from .resolve import Resolution, resolve
from .rollout_plan import RolloutPlan, plan_rollout
from .store import usage_changed

log = logging.getLogger(__name__)

# While a track is not available, its pods are looked at this often even if no event arrives: a crash
# loop or a failed pull changes nothing in the Deployment's status, so no watch event would come.
UNAVAILABLE_RECHECK_SECONDS = 10.0
# Once a reason is reported, re-checks only refresh its message (restart counts); a fix arrives as an
# event (the spec, or the Deployment becoming available).
FAILING_RECHECK_SECONDS = 30.0

PRUNABLE_KINDS = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
                  "ConfigMap"}


@dataclass
class Observed:
    """What the cluster shows for the Agent's stable and canary Deployments."""

    stable: dict[str, Any] | None
    canary: dict[str, Any] | None


def _child(ctx: Context, namespace: str, agent: str, kind: str, name: str) -> dict[str, Any] | None:
    return ctx.store.child(namespace, "Agent", agent, kind, name)


def _rolled_out(deployment: dict[str, Any] | None, revision: str, want: int | None) -> tuple[bool, int, int]:
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
        and updated >= target and available >= target and replicas == updated
    )
    return complete, replicas, ready


def _deadline_exceeded(deployment: dict[str, Any] | None) -> str | None:
    for cond in (deployment or {}).get("status", {}).get("conditions", []):
        if cond.get("type") == "Progressing" and cond.get("status") == "False":
            return cond.get("message") or cond.get("reason", "")
    return None


async def _pod_failures(ctx: Context, namespace: str, agent: str,
                        tracks: list[tuple[str, str]]) -> dict[str, PodFailure]:
    """track -> why its pods at that revision cannot start, for the (track, revision) pairs not available.
    One list for both tracks, and only while something is unavailable: a fleet at rest reads no pods."""
    if not tracks:
        return {}
    try:
        pods = await ctx.client.list_pods(namespace, f"{names.LABEL_AGENT}={agent}")
    except ApiError as exc:
        # Without the pods the Agent still reports what its Deployment says; e.g. an older ClusterRole.
        log.warning("cannot list the pods of Agent %s/%s: %s", namespace, agent, exc)
        return {}
    found = {track: pod_failure(pods, track, revision) for track, revision in tracks}
    return {track: failure for track, failure in found.items() if failure is not None}


async def _apply_all(ctx: Context, resolved: ResolvedAgent, desired: list[dict[str, Any]],
                     replicas: ReplicaPlan) -> int:
    writes = 0
    namespace, agent = resolved.namespace, resolved.name
    for obj in desired:
        live = _child(ctx, namespace, agent, obj["kind"], obj["metadata"]["name"])
        if obj["kind"] == "ConfigMap" and live is not None:
            continue  # immutable and named by content: existing means identical
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == agent and replicas.hand_over is not None:
            writes += await _hand_over_replicas(ctx, resolved, obj, live, replicas.hand_over)
            continue
        if needs_apply(obj, live):
            await ctx.client.apply(obj)
            writes += 1
    return writes


async def _hand_over_replicas(ctx: Context, resolved: ResolvedAgent, deployment: dict[str, Any],
                              live: dict[str, Any] | None, count: int) -> int:
    """Give spec.replicas of the stable Deployment a second owner before the operator's own apply
    stops sending it, so the server keeps the count (builders/replicas.py explains why)."""
    hand_over = children.replica_hand_over(resolved, count)
    if live is None:
        # Created with the count (no other manager can create it), then handed over and let go of.
        await ctx.client.apply(deployment)
        await ctx.client.apply(hand_over, manager=HANDOVER_MANAGER)
        released = {**deployment, "spec": {k: v for k, v in deployment["spec"].items() if k != "replicas"}}
        await ctx.client.apply(released)
        return 3
    await ctx.client.apply(hand_over, manager=HANDOVER_MANAGER)
    await ctx.client.apply(deployment)  # without replicas: the operator's manager lets go of the field
    return 2


async def _prune(ctx: Context, namespace: str, agent: str, uid: str, desired: list[dict[str, Any]],
                 keep_config_maps: set[str]) -> None:
    wanted = {(o["kind"], o["metadata"]["name"]) for o in desired}
    revision_maps: list[dict[str, Any]] = []
    for obj in ctx.store.children(namespace, "Agent", agent):
        kind, name = obj["kind"], obj["metadata"]["name"]
        owners = obj["metadata"].get("ownerReferences", [])
        if kind not in PRUNABLE_KINDS or not any(o.get("uid") == uid for o in owners):
            continue
        if kind == "ConfigMap":
            if name not in keep_config_maps:
                revision_maps.append(obj)
            continue
        if (kind, name) not in wanted:
            await ctx.client.delete(obj["apiVersion"], kind, namespace, name)
    # Keep a short history of older revisions for rollback and `kubectl agentfleet history`.
    revision_maps.sort(key=lambda o: o["metadata"].get("creationTimestamp", ""), reverse=True)
    for obj in revision_maps[children.REVISION_HISTORY:]:
        await ctx.client.delete("v1", "ConfigMap", namespace, obj["metadata"]["name"])


def _agent_object(namespace: str, name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name, "namespace": namespace, "uid": uid}}


def _columns(ctx: Context, namespace: str, name: str, desired: int) -> dict[str, Any]:
    """The printer columns (READY, ENDPOINT) and scale fields from what runs now. Every status write
    carries them, so an Agent that is Pending or Failed shows 0/2 and its endpoint, not blanks."""
    status = (_child(ctx, namespace, name, "Deployment", name) or {}).get("status", {})
    ready = status.get("readyReplicas", 0)
    return {"replicas": status.get("replicas", 0), "readyReplicas": ready, "ready": f"{ready}/{desired}",
            "selector": f"{names.LABEL_AGENT}={name}", "endpoint": names.endpoint(name, namespace)}


def _problem_conditions(res: Resolution) -> tuple[Cond, Cond]:
    conn = res.first("connectors")
    state = res.first("state") or next(iter(res.degraded), None)
    connectors = Cond("ConnectorsReady", False, conn.reason, conn.message) if conn else Cond(
        "ConnectorsReady", True, reasons.RESOLVED, f"{len(res.connectors)} connector(s) resolved")
    state_cond = Cond("StateReady", False, state.reason, state.message) if state else Cond(
        "StateReady", True, reasons.RESOLVED if res.state else reasons.STATELESS,
        f"StatePolicy {res.state.name} resolved" if res.state else "no StatePolicy: each request stands alone")
    return connectors, state_cond


async def reconcile_agent(ctx: Context, namespace: str, name: str) -> float | None:
    started = ctx.now()
    body = ctx.store.agent(namespace, name)
    if body is None:
        for dependency in usage_changed(ctx.store.forget((namespace, name))):
            ctx.enqueue(dependency)
        return None
    meta = body["metadata"]
    uid, generation = meta["uid"], meta.get("generation")
    if meta.get("deletionTimestamp"):
        return None  # garbage collection removes the children through their owner references
    old_status = ctx.store.status_for((namespace, name), body)
    agent_obj = _agent_object(namespace, name, uid)
    try:
        spec = AgentSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        # The CRD schema refuses this at admission; reaching here means a schema older than the operator.
        message = "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        live = (_child(ctx, namespace, name, "Deployment", name) or {}).get("spec", {}).get("replicas", 0)
        await _write_status(ctx, agent_obj, old_status, generation,
                            {"phase": "Failed", **_columns(ctx, namespace, name, live)}, [
            Cond("Ready", False, reasons.INVALID_SPEC, message), Cond("Reconciling", False, reasons.INVALID_SPEC),
            Cond("Stalled", True, reasons.INVALID_SPEC, message)])
        return None

    res = resolve(ctx.store, namespace, name, spec)
    for dependency in usage_changed(ctx.store.record_dependencies((namespace, name), res.dependencies)):
        ctx.enqueue(dependency)
    connectors_cond, state_cond = _problem_conditions(res)

    if res.problems:
        first = res.problems[0]
        deployed = _child(ctx, namespace, name, "Deployment", name) is not None
        # Keep whatever runs (the last good revision) and say why nothing new can roll out.
        columns = _columns(ctx, namespace, name, children.desired_stable_replicas(spec))
        await _write_status(ctx, agent_obj, old_status, generation,
                            {"phase": "Degraded" if deployed else "Pending", **columns}, [
            Cond("Ready", False, first.reason, first.message),
            Cond("Reconciling", False, first.reason, "waiting for the reference to be fixed"),
            Cond("Stalled", True, first.reason, first.message),
            connectors_cond, state_cond,
            Cond("RolloutHealthy", None, first.reason, "no rollout while references are unresolved"),
        ], events=[("Warning", first.reason, first.message)])
        metrics.observe_reconcile("Agent", started, ctx.now(), error=first.reason)
        return None

    if res.generate_access_secret:
        key = random_secrets.token_urlsafe(32)
        resolved_stub = ResolvedAgent(name=name, namespace=namespace, uid=uid, spec=spec, image="", prompt_text="")
        try:
            await ctx.client.create(children.access_secret(resolved_stub, key))
        except ApiError as exc:
            if exc.namespace_terminating:
                return None
            raise
        return 2.0  # the Secret's watch event wakes us sooner; its hash is part of the revision

    resolved = ResolvedAgent(
        name=name, namespace=namespace, uid=uid, spec=spec,
        image=spec.image or ctx.config.runtime_image, prompt_text=res.prompt_text,
        connectors=tuple(res.connectors), state=res.state, access_secret=res.access_secret,
        secret_hashes=dict(res.secret_hashes),
    )
    revision = revision_hash(resolved.image, revision_inputs(resolved), resolved.secret_hashes)
    config = build_runtime_config(resolved, revision)
    mounts = {k: tuple(sorted(v)) for k, v in secret_mounts(resolved).items()}
    current = children.Track("stable", revision, resolved.image, mounts)

    live_stable = _child(ctx, namespace, name, "Deployment", name)
    previous_scaling = old_status.get("scaling")
    replica_plan = plan_replicas(
        spec, (live_stable or {}).get("spec", {}).get("replicas") if live_stable else None,
        _child(ctx, namespace, name, "HorizontalPodAutoscaler", name) is not None,
        ScalingStatus.model_validate(previous_scaling) if previous_scaling else None)
    plan: RolloutPlan = await plan_rollout(
        ctx, resolved, old_status, current, lambda kind, child: _child(ctx, namespace, name, kind, child),
        meta.get("annotations") or {}, replica_plan.apply)
    # While the count is kept as the HPA left it, the PDB follows the pods that run, not spec.replicas.
    held = live_stable.get("spec", {}).get("replicas") if live_stable and replica_plan.status.owner == "Deployment" \
        else None
    desired = desired_children(resolved, ChildrenPlan(current=current, config=config, tracks=plan.tracks,
                                                      split_services=plan.split_services, held_replicas=held))

    try:
        await _apply_all(ctx, resolved, desired, replica_plan)
        await _prune(ctx, namespace, name, uid, desired,
                     {names.config_map(name, t.revision) for t in plan.tracks} | {names.config_map(name, revision)})
    except ApiError as exc:
        if exc.namespace_terminating:
            return None
        reason = reasons.FORBIDDEN if exc.status == 403 else reasons.APPLY_FAILED
        columns = _columns(ctx, namespace, name, children.desired_stable_replicas(spec))
        await _write_status(ctx, agent_obj, old_status, generation, {"phase": "Failed", **columns}, [
            Cond("Ready", False, reason, str(exc)), Cond("Reconciling", True, reason, str(exc)),
            Cond("Stalled", exc.status in (400, 403, 422), reason, str(exc)), connectors_cond, state_cond,
            Cond("RolloutHealthy", None, reason, "children could not be applied")])
        metrics.observe_reconcile("Agent", started, ctx.now(), error=reason)
        raise

    if plan.split_services and spec.rollout and spec.rollout.canary and spec.rollout.canary.traffic_routing:
        route_problem = await _route_traffic(ctx, namespace, name, spec.rollout.canary.traffic_routing.http_route.name,
                                             plan)
        if route_problem:
            plan.health = route_problem
    stable_track = plan.tracks[0]
    stable_dep = _child(ctx, namespace, name, "Deployment", name)
    want = replica_plan.apply if replica_plan.hand_over is None else replica_plan.hand_over
    complete, replicas, ready = _rolled_out(stable_dep, stable_track.revision, want)
    stuck = _deadline_exceeded(stable_dep)
    desired_count = (stable_dep or {}).get("spec", {}).get("replicas", want if want is not None else 0)
    if spec.autoscaling:
        # Until the autoscaler has scaled to its minimum, fewer pods than the Agent asks for are running.
        desired_count = max(desired_count, spec.autoscaling.min_replicas)

    stable_available = complete and ready >= desired_count
    unavailable = [] if stable_available else [("stable", stable_track.revision)]
    for track in plan.tracks[1:]:
        if track.replicas and not _rolled_out(_child(ctx, namespace, name, "Deployment", names.canary(name)),
                                              track.revision, track.replicas)[0]:
            unavailable.append((track.name, track.revision))
    failures = await _pod_failures(ctx, namespace, name, unavailable)

    if stuck and not complete:
        ready_cond = Cond("Ready", False, reasons.DEPLOYMENT_UNAVAILABLE, f"Deployment {name}: {stuck}")
        reconciling = Cond("Reconciling", False, reasons.DEPLOYMENT_UNAVAILABLE, stuck)
        stalled = Cond("Stalled", True, reasons.DEPLOYMENT_UNAVAILABLE, stuck)
        phase = "Failed"
    elif complete and ready >= desired_count:
        ready_cond = Cond("Ready", True, reasons.AGENT_READY, f"{ready}/{desired_count} pods ready at revision "
                          f"{stable_track.revision}")
        reconciling = Cond("Reconciling", plan.in_progress, plan.reason if plan.in_progress else reasons.IDLE,
                           plan.message)
        stalled = Cond("Stalled", False, reasons.HEALTHY)
        phase = plan.phase or "Ready"
    else:
        what = "rolling out" if stable_dep else "creating the Deployment"
        ready_cond = Cond("Ready", False, reasons.ROLLOUT_IN_PROGRESS,
                          f"{what}: {ready}/{desired_count} pods ready at revision {stable_track.revision}")
        reconciling = Cond("Reconciling", True, reasons.ROLLOUT_IN_PROGRESS, ready_cond.message)
        stalled = Cond("Stalled", False, reasons.PROGRESSING)
        phase = plan.phase or ("Progressing" if old_status.get("phase") not in (None, "Pending") else "Pending")
    failure = failures.get("stable") or failures.get("canary")
    if failure is not None:
        # kstatus: the rollout cannot progress without a change (image, spec, config), so Stalled, not
        # Reconciling. A failing canary leaves the stable pods serving: Degraded rather than Failed.
        ready_cond = Cond("Ready", False, failure.reason, failure.message)
        reconciling = Cond("Reconciling", False, failure.reason, "the pods cannot start until the Agent changes")
        stalled = Cond("Stalled", True, failure.reason, failure.message)
        phase = "Failed" if "stable" in failures and ready == 0 else "Degraded"
        if "stable" not in failures:
            plan.health = Cond("RolloutHealthy", False, failure.reason, failure.message)
    if plan.degraded_reason:
        ready_cond = Cond("Ready", False, plan.degraded_reason, plan.message)
        phase = "Degraded"
    elif res.degraded and ready_cond.status:
        ready_cond = Cond("Ready", False, res.degraded[0].reason, res.degraded[0].message)
        phase = "Degraded"

    fields: dict[str, Any] = {
        "phase": phase,
        "replicas": replicas,
        "readyReplicas": ready,
        "ready": f"{ready}/{desired_count}",
        "selector": f"{names.LABEL_AGENT}={name}",
        "endpoint": names.endpoint(name, namespace),
        "revision": {"stable": stable_track.revision, "canary": plan.canary_revision},
        "rollout": plan.rollout_status,
        "revisionHistory": plan.history,
        "scaling": replica_plan.status.to_wire(),
    }
    events = []
    old_ready = next((c for c in old_status.get("conditions", []) if c.get("type") == "Ready"), None)
    if ready_cond.status and (old_ready is None or old_ready.get("status") != "True"):
        events.append(("Normal", reasons.AGENT_READY, ready_cond.message))
    if old_status.get("revision", {}).get("stable") not in (None, "", stable_track.revision):
        events.append(("Normal", reasons.REVISION_ROLLED_OUT, f"revision {stable_track.revision} is now stable"))
    events += plan.events
    if failure is not None:
        events.append(("Warning", failure.reason, failure.message))  # once per reason (_write_status)
    await _write_status(ctx, agent_obj, old_status, generation, fields, [
        ready_cond, reconciling, stalled, connectors_cond, state_cond, plan.health], events=events)
    metrics.observe_reconcile("Agent", started, ctx.now(), error=None)
    metrics.set_agent_phase((namespace, name), phase)
    if not unavailable:
        return plan.requeue_after
    recheck = FAILING_RECHECK_SECONDS if failure is not None else UNAVAILABLE_RECHECK_SECONDS
    return recheck if plan.requeue_after is None else min(plan.requeue_after, recheck)


ROUTE_API = "gateway.networking.k8s.io/v1"


async def _route_traffic(ctx: Context, namespace: str, agent: str, route_name: str, plan: RolloutPlan) -> Cond | None:
    """Set exact weights on the named HTTPRoute; a missing route or kind is reported, never fatal."""
    try:
        route = await ctx.client.get(ROUTE_API, "HTTPRoute", namespace, route_name)
    except ApiError as exc:
        return Cond("RolloutHealthy", False, reasons.HTTP_ROUTE_UNAVAILABLE, f"HTTPRoute {route_name}: {exc.message}")
    if route is None:
        return Cond("RolloutHealthy", False, reasons.HTTP_ROUTE_NOT_FOUND,
                    f"HTTPRoute {route_name} not found (is the Gateway API installed?); weights are replica ratios")
    if not traffic_route.routed_rules(route, agent):
        return Cond("RolloutHealthy", False, reasons.HTTP_ROUTE_NOT_ROUTED,
                    f"no rule of HTTPRoute {route_name} routes only to Service {agent}, "
                    f"{agent}-stable or {agent}-canary")
    weight = int(plan.rollout_status.get("weight", 0)) if plan.canary_revision else 0
    operations = traffic_route.route_patch(route, agent, weight, bool(plan.canary_revision))
    if operations:
        await ctx.client.json_patch(ROUTE_API, "HTTPRoute", namespace, route_name, operations)
    if plan.canary_revision:
        plan.rollout_status["actualWeight"] = weight  # the router splits exactly
    return None


async def _write_status(ctx: Context, agent_obj: dict[str, Any], old: dict[str, Any], generation: int | None,
                        fields: dict[str, Any], conds: list[Cond],
                        events: list[tuple[str, str, str]] | None = None) -> None:
    now = rfc3339(ctx.now())
    new = dict(fields)
    new["observedGeneration"] = generation
    new["conditions"] = merge_conditions(old.get("conditions", []), conds, generation, now)
    patch = status_patch(old, new)
    if not patch:
        return
    # Validate our own output against the model before it reaches the API server.
    AgentStatus.model_validate(new)
    meta = agent_obj["metadata"]
    written = await ctx.client.patch_status(API_VERSION, "Agent", meta["namespace"], meta["name"], patch)
    if written is not None:
        ctx.store.remember_status((meta["namespace"], meta["name"]), written["metadata"]["resourceVersion"],
                                  written.get("status") or {})
    old_reasons = {c.get("type"): (c.get("status"), c.get("reason")) for c in old.get("conditions", [])}
    for type_, reason, message in events or []:
        # Events mark transitions only; a repeated reconcile with the same outcome posts nothing.
        if type_ == "Warning" and old_reasons.get("Ready") == ("False", reason):
            continue
        await ctx.event(agent_obj, type_, reason, message)
