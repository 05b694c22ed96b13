"""Every child an Agent should have right now, in the order they are applied: the one place a reader
finds which objects make up an Agent (builders/agent_children.py builds each of them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import agent_children as children
from . import names
from .inputs import ResolvedAgent


@dataclass(frozen=True)
class ChildrenPlan:
    """What the rollout decided, as far as the children's shapes depend on it."""

    current: children.Track  # the revision the spec asks for; its ConfigMap is always written
    config: dict[str, Any]  # the runtime config of that revision
    tracks: Sequence[children.Track]  # stable first, then the canary if one runs
    split_services: bool = False  # a canary with its own -stable and -canary Services
    # While the replica count is kept as an HPA left it, the PDB follows the pods that run.
    held_replicas: int | None = None


def desired_children(resolved: ResolvedAgent, plan: ChildrenPlan) -> list[dict[str, Any]]:
    name = resolved.name
    desired: list[dict[str, Any]] = [
        children.service_account(resolved),
        children.revision_config_map(resolved, plan.current, plan.config),
        *(children.deployment(resolved, track) for track in plan.tracks),
        children.service(resolved, name, None),
    ]
    if plan.split_services:
        desired.append(children.service(resolved, names.stable(name), "stable"))
        desired.append(children.service(resolved, names.canary(name), "canary"))
    for optional in (
        children.horizontal_pod_autoscaler(resolved),
        children.pod_disruption_budget(resolved, plan.held_replicas),
    ):
        if optional is not None:
            desired.append(optional)
    desired.append(children.network_policy(resolved))
    return desired
