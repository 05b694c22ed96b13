"""Who sets the stable Deployment's `spec.replicas`, and how it changes hands without a dip.

Server-side apply removes a field its manager stops sending when no other manager owns it. So the
obvious "leave replicas out once an HPA owns the count" resets a Deployment the operator scaled to 3
back to the default of 1 at its next apply, and the HPA raises it again only at its next sync. The
Kubernetes documentation's fix ("transferring ownership", for HPAs) is followed here: a second field
manager first applies the current count, then the operator's own apply leaves the field out. The
count is never without an owner, so it never changes; the HPA takes it over by scaling.

The reverse (autoscaling removed) keeps the count the HPA left until the user gives a new explicit
value: spec.replicas was ignored while autoscaling and may be stale (often the default 1), so
applying it at once would be the same dip the other way round.

Pure: the reconciler passes what it observed and writes what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.agent import AgentSpec, ScalingStatus
from ..api.identity import HANDOVER_MANAGER as HANDOVER_MANAGER

# The field manager that holds spec.replicas between the operator letting go and the HPA taking over.


@dataclass(frozen=True)
class ReplicaPlan:
    apply: int | None
    """spec.replicas in the operator's own apply of the stable Deployment; None = left out."""
    hand_over: int | None = None
    """When set, HANDOVER_MANAGER applies this count before the operator's apply (after, on create), and
    the operator's apply is sent even if nothing else changed, so its own manager lets go of the field."""
    status: ScalingStatus = field(default_factory=ScalingStatus)


def plan_replicas(
    spec: AgentSpec, live_replicas: int | None, hpa_exists: bool, previous: ScalingStatus | None
) -> ReplicaPlan:
    """The replica count to apply for the stable Deployment.

    live_replicas: the stable Deployment's spec.replicas now (None: no Deployment yet).
    hpa_exists: the Agent's HPA is in the cluster, i.e. the hand-over to it has been done.
    previous: status.scaling as last written (None: never written or lost).
    """
    if spec.autoscaling is not None:
        status = ScalingStatus(owner="HorizontalPodAutoscaler", spec_replicas=spec.replicas)
        low, high = spec.autoscaling.min_replicas, spec.autoscaling.max_replicas
        if live_replicas is None:
            # Created at the autoscaler's minimum (also when re-created under an existing HPA), so the
            # Agent is Ready without waiting for the HPA's next sync; the hand-over then keeps that
            # count once the operator stops sending it.
            return ReplicaPlan(apply=low, hand_over=low, status=status)
        if hpa_exists:
            return ReplicaPlan(apply=None, status=status)
        # Within the bounds the HPA would enforce anyway, so its first sync changes nothing.
        return ReplicaPlan(apply=None, hand_over=min(max(live_replicas, low), high), status=status)

    explicit = ReplicaPlan(apply=spec.replicas, status=ScalingStatus(owner="Agent", spec_replicas=spec.replicas))
    # Without a status (written by an older operator, or lost) an HPA still there is the evidence.
    scaled_elsewhere = previous.owner != "Agent" if previous is not None else hpa_exists
    if live_replicas is None or not scaled_elsewhere:
        return explicit
    if previous is not None and previous.spec_replicas != spec.replicas:
        return explicit  # a new value since the autoscaler let go: the user's explicit count
    return ReplicaPlan(apply=None, status=ScalingStatus(owner="Deployment", spec_replicas=spec.replicas))
