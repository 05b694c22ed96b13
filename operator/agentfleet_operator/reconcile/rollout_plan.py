"""Which revision each track runs: the bridge between the reconciler and the rollout package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..builders.agent_children import Track, desired_stable_replicas
from ..builders.conditions import Cond
from ..builders.inputs import ResolvedAgent
from .context import Context

HISTORY = 10


@dataclass
class RolloutPlan:
    tracks: list[Track]  # first: stable
    canary_revision: str = ""
    split_services: bool = False
    rollout_status: dict[str, Any] = field(default_factory=lambda: {
        "phase": "Idle", "step": 0, "weight": 0, "message": "", "analysis": []})
    history: list[str] = field(default_factory=list)
    phase: str | None = None  # overrides the phase derived from the Deployment
    in_progress: bool = False
    reason: str = "Idle"
    message: str = ""
    degraded_reason: str | None = None
    health: Cond = field(default_factory=lambda: Cond("RolloutHealthy", True, "RolledOut", "no rollout in progress"))
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float | None = None


def _history(old_status: dict[str, Any], stable: str) -> list[str]:
    history = [stable] + [rev for rev in old_status.get("revisionHistory", []) if rev != stable]
    return history[:HISTORY]


ConfigMapLookup = Callable[[str], dict[str, Any] | None]


async def plan_rollout(ctx: Context, agent: ResolvedAgent, old_status: dict[str, Any], current: Track,
                       config_map_of: ConfigMapLookup) -> RolloutPlan:
    replicas = None if agent.spec.autoscaling else desired_stable_replicas(agent.spec)
    stable = Track("stable", current.revision, current.image, current.mounts, replicas)
    return RolloutPlan(tracks=[stable], history=_history(old_status, current.revision))
