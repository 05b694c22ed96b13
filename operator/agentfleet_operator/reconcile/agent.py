"""Reconcile one Agent: resolve references, render the revision, apply the children that differ,
prune the ones no longer wanted, and report truthfully what runs."""

from __future__ import annotations

import dataclasses
import logging
import secrets as random_secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..api import reasons
from ..api.agent import AgentSpec, AgentStatus, ScalingStatus
from ..api.base import API_VERSION
from ..builders import agent_children as children
from ..builders import agent_status as status_rules
from ..builders import names, traffic_route
from ..builders.conditions import Cond
from ..builders.desired_children import ChildrenPlan, desired_children
from ..builders.drift import needs_apply
from ..builders.egress import EgressSettings
from ..builders.egress import plan as egress_plan
from ..builders.inputs import Resolution, ResolvedAgent
from ..builders.pod_health import PodFailure, pod_failure
from ..builders.replicas import HANDOVER_MANAGER, ReplicaPlan, plan_replicas
from ..builders.revision import revision_hash
from ..builders.runtime_config import build_runtime_config, revision_inputs, secret_mounts
from ..kube.client import ApiError
from . import metrics
from .context import Context
from .resolve import resolve
from .rollout_plan import plan_rollout
from .status_writer import write_status
from .store import usage_changed

log = logging.getLogger(__name__)

PRUNABLE_KINDS = {
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "ConfigMap",
}


def _child(ctx: Context, namespace: str, agent: str, kind: str, name: str) -> dict[str, Any] | None:
    return ctx.store.child(namespace, "Agent", agent, kind, name)


async def _pod_failures(
    ctx: Context, namespace: str, agent: str, tracks: list[tuple[str, str]]
) -> dict[str, PodFailure]:
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


async def _apply_all(
    ctx: Context, resolved: ResolvedAgent, desired: list[dict[str, Any]], replicas: ReplicaPlan
) -> int:
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


async def _hand_over_replicas(
    ctx: Context, resolved: ResolvedAgent, deployment: dict[str, Any], live: dict[str, Any] | None, count: int
) -> int:
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


async def _prune(
    ctx: Context, namespace: str, agent: str, uid: str, desired: list[dict[str, Any]], keep_config_maps: set[str]
) -> None:
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
    for obj in revision_maps[children.REVISION_HISTORY :]:
        await ctx.client.delete("v1", "ConfigMap", namespace, obj["metadata"]["name"])


def _agent_object(namespace: str, name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name, "namespace": namespace, "uid": uid}}


@dataclass
class _Run:
    """One reconcile of one Agent: what every step reads, so each step's signature says only what it adds."""

    ctx: Context
    namespace: str
    name: str
    uid: str
    generation: int | None
    annotations: dict[str, str]
    old_status: dict[str, Any]
    tls: bool = False  # the spec asks for HTTPS: the endpoint the status shows is https

    @property
    def agent_obj(self) -> dict[str, Any]:
        return _agent_object(self.namespace, self.name, self.uid)

    def child(self, kind: str, name: str) -> dict[str, Any] | None:
        return _child(self.ctx, self.namespace, self.name, kind, name)

    def observed(self, **more: Any) -> status_rules.ObservedAgent:
        return status_rules.ObservedAgent(
            self.name, self.namespace, self.old_status, stable=self.child("Deployment", self.name), tls=self.tls, **more
        )

    async def write(self, update: status_rules.StatusUpdate) -> None:
        await write_status(
            self.ctx,
            self.agent_obj,
            self.old_status,
            self.generation,
            update.fields,
            update.conditions,
            update.events,
            validate=AgentStatus.model_validate,
            remember=True,
        )


def _forget_deleted(ctx: Context, namespace: str, name: str) -> None:
    for dependency in usage_changed(ctx.store.forget((namespace, name))):
        ctx.enqueue(dependency)


def _load_spec(body: dict[str, Any]) -> AgentSpec | str:
    """The spec, or what is wrong with it (the CRD schema refuses it first; this is a schema older
    than the operator)."""
    try:
        return AgentSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        return "; ".join(f"spec.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])


def _resolve_references(run: _Run, spec: AgentSpec) -> Resolution:
    res = resolve(run.ctx.store, run.namespace, run.name, spec, run.ctx.config.cluster_domain)
    for dependency in usage_changed(run.ctx.store.record_dependencies((run.namespace, run.name), res.dependencies)):
        run.ctx.enqueue(dependency)
    return res


async def _create_access_secret(run: _Run, spec: AgentSpec) -> float | None:
    """The generated caller key; its watch event wakes us sooner, and its hash is part of the revision."""
    key = random_secrets.token_urlsafe(32)
    stub = ResolvedAgent(name=run.name, namespace=run.namespace, uid=run.uid, spec=spec, image="", prompt_text="")
    try:
        await run.ctx.client.create(children.access_secret(stub, key))
    except ApiError as exc:
        if exc.namespace_terminating:
            return None
        raise
    return 2.0


def _resolved_agent(run: _Run, spec: AgentSpec, res: Resolution) -> ResolvedAgent:
    return ResolvedAgent(
        name=run.name,
        namespace=run.namespace,
        uid=run.uid,
        spec=spec,
        image=spec.image or run.ctx.config.runtime_image,
        prompt_text=res.prompt_text,
        connectors=tuple(res.connectors),
        state=res.state,
        access_secret=res.access_secret,
        secret_hashes=dict(res.secret_hashes),
        services=dict(res.services),
        egress_settings=EgressSettings.from_config(run.ctx.config),
    )


def _render_revision(resolved: ResolvedAgent) -> tuple[children.Track, dict[str, Any]]:
    """The track the spec asks for, named by the hash of everything its pods run, and its runtime config."""
    revision = revision_hash(resolved.image, revision_inputs(resolved), resolved.secret_hashes)
    mounts = {k: tuple(sorted(v)) for k, v in secret_mounts(resolved).items()}
    track = children.Track("stable", revision, resolved.image, mounts, tls=resolved.tls_secret is not None)
    return track, build_runtime_config(resolved, revision)


def _plan_replicas(run: _Run, spec: AgentSpec, live_stable: dict[str, Any] | None) -> ReplicaPlan:
    previous_scaling = run.old_status.get("scaling")
    return plan_replicas(
        spec,
        (live_stable or {}).get("spec", {}).get("replicas") if live_stable else None,
        run.child("HorizontalPodAutoscaler", run.name) is not None,
        ScalingStatus.model_validate(previous_scaling) if previous_scaling else None,
    )


def _replica_target(spec: AgentSpec, replica_plan: ReplicaPlan | None) -> status_rules.ReplicaTarget:
    count = (
        None
        if replica_plan is None
        else (replica_plan.apply if replica_plan.hand_over is None else replica_plan.hand_over)
    )
    return status_rules.ReplicaTarget(
        spec_replicas=children.desired_stable_replicas(spec),
        count=count,
        min_replicas=spec.autoscaling.min_replicas if spec.autoscaling else None,
        scaling=replica_plan.status.to_wire() if replica_plan is not None else None,
    )


def _desired_children(
    run: _Run,
    resolved: ResolvedAgent,
    current: children.Track,
    config: dict[str, Any],
    plan: status_rules.RolloutPlan,
    replica_plan: ReplicaPlan,
    live_stable: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    # While the count is kept as the HPA left it, the PDB follows the pods that run, not spec.replicas.
    held = (
        live_stable.get("spec", {}).get("replicas")
        if live_stable and replica_plan.status.owner == "Deployment"
        else None
    )
    return desired_children(
        resolved,
        ChildrenPlan(
            current=current, config=config, tracks=plan.tracks, split_services=plan.split_services, held_replicas=held
        ),
    )


async def _apply_and_prune(
    run: _Run,
    resolved: ResolvedAgent,
    res: Resolution,
    desired: list[dict[str, Any]],
    plan: status_rules.RolloutPlan,
    current: children.Track,
    replica_plan: ReplicaPlan,
    started: float,
) -> bool:
    """False when the namespace is going away (nothing more to do); a refused apply is reported, then raised."""
    try:
        await _apply_all(run.ctx, resolved, desired, replica_plan)
        await _prune(
            run.ctx,
            run.namespace,
            run.name,
            run.uid,
            desired,
            {names.config_map(run.name, t.revision) for t in plan.tracks}
            | {names.config_map(run.name, current.revision)},
        )
    except ApiError as exc:
        if exc.namespace_terminating:
            return False
        update = status_rules.apply_failed_status(
            run.observed(), res, _replica_target(resolved.spec, None), exc.status, str(exc)
        )
        await run.write(update)
        metrics.observe_reconcile("Agent", started, run.ctx.now(), error=update.error)
        raise
    return True


async def _route_canary_traffic(run: _Run, spec: AgentSpec, plan: status_rules.RolloutPlan) -> Cond | None:
    canary = spec.rollout.canary if spec.rollout else None
    if not (plan.split_services and canary and canary.traffic_routing):
        return None
    return await _route_traffic(run.ctx, run.namespace, run.name, canary.traffic_routing.http_route.name, plan)


async def _observe(
    run: _Run, plan: status_rules.RolloutPlan, target: status_rules.ReplicaTarget, route_problem: Cond | None
) -> status_rules.ObservedAgent:
    """The Deployments as they are after the apply, and, for the tracks not available, why their pods
    cannot start."""
    observed = run.observed(canary=run.child("Deployment", names.canary(run.name)), route_problem=route_problem)
    unavailable = status_rules.unavailable_tracks(observed, plan, target)
    failures = await _pod_failures(run.ctx, run.namespace, run.name, unavailable)
    return dataclasses.replace(observed, pod_failures=failures)


async def reconcile_agent(ctx: Context, namespace: str, name: str) -> float | None:
    """resolve -> render -> plan replicas and rollout -> desired children -> apply -> observe -> status;
    the seconds until the next look, None when events alone bring the next one."""
    started = ctx.now()
    body = ctx.store.agent(namespace, name)
    if body is None:
        _forget_deleted(ctx, namespace, name)
        return None
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return None  # garbage collection removes the children through their owner references
    run = _Run(
        ctx,
        namespace,
        name,
        meta["uid"],
        meta.get("generation"),
        meta.get("annotations") or {},
        ctx.store.status_for((namespace, name), body),
    )
    spec = _load_spec(body)
    if isinstance(spec, str):
        await run.write(status_rules.invalid_spec_status(run.observed(), spec))
        return None
    run.tls = spec.access is not None and spec.access.tls is not None

    res = _resolve_references(run, spec)
    if res.problems:
        update = status_rules.agent_status(run.observed(), None, res, _replica_target(spec, None))
        await run.write(update)
        metrics.observe_reconcile("Agent", started, ctx.now(), error=update.error)
        return None
    if res.generate_access_secret:
        return await _create_access_secret(run, spec)

    resolved = _resolved_agent(run, spec, res)
    current, config = _render_revision(resolved)
    live_stable = run.child("Deployment", name)
    replica_plan = _plan_replicas(run, spec, live_stable)
    plan = await plan_rollout(ctx, resolved, run.old_status, current, run.child, run.annotations, replica_plan.apply)
    desired = _desired_children(run, resolved, current, config, plan, replica_plan, live_stable)
    if not await _apply_and_prune(run, resolved, res, desired, plan, current, replica_plan, started):
        return None
    route_problem = await _route_canary_traffic(run, spec, plan)

    target = _replica_target(spec, replica_plan)
    observed = await _observe(run, plan, target, route_problem)
    update = status_rules.agent_status(observed, plan, res, target, egress_plan(resolved))
    await run.write(update)
    metrics.observe_reconcile("Agent", started, ctx.now(), error=None)
    metrics.set_agent_phase((namespace, name), update.phase)
    return update.requeue_after


ROUTE_API = "gateway.networking.k8s.io/v1"


async def _route_traffic(
    ctx: Context, namespace: str, agent: str, route_name: str, plan: status_rules.RolloutPlan
) -> Cond | None:
    """Set exact weights on the named HTTPRoute; a missing route or kind is reported, never fatal."""
    try:
        route = await ctx.client.get(ROUTE_API, "HTTPRoute", namespace, route_name)
    except ApiError as exc:
        return Cond("RolloutHealthy", False, reasons.HTTP_ROUTE_UNAVAILABLE, f"HTTPRoute {route_name}: {exc.message}")
    if route is None:
        return Cond(
            "RolloutHealthy",
            False,
            reasons.HTTP_ROUTE_NOT_FOUND,
            f"HTTPRoute {route_name} not found (is the Gateway API installed?); weights are replica ratios",
        )
    if not traffic_route.routed_rules(route, agent):
        return Cond(
            "RolloutHealthy",
            False,
            reasons.HTTP_ROUTE_NOT_ROUTED,
            f"no rule of HTTPRoute {route_name} routes only to Service {agent}, {agent}-stable or {agent}-canary",
        )
    weight = int(plan.rollout_status.get("weight", 0)) if plan.canary_revision else 0
    operations = traffic_route.route_patch(route, agent, weight, bool(plan.canary_revision))
    if operations:
        await ctx.client.json_patch(ROUTE_API, "HTTPRoute", namespace, route_name, operations)
    if plan.canary_revision:
        plan.rollout_status["actualWeight"] = weight  # the router splits exactly
    return None
