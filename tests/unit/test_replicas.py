"""The replicas hand-off between an Agent and its HPA (builders/replicas.py), both directions."""

from __future__ import annotations

from typing import Any

from agentfleet_operator.api import AgentSpec
from agentfleet_operator.api.agent import ScalingStatus
from agentfleet_operator.builders.replicas import plan_replicas
from hypothesis import given
from hypothesis import strategies as st


def _spec(replicas: int = 1, autoscaling: dict[str, Any] | None = None) -> AgentSpec:
    body: dict[str, Any] = {
        "model": {"provider": "rules", "name": "r"},
        "prompt": {"system": "s"},
        "replicas": replicas,
    }
    if autoscaling:
        body["autoscaling"] = autoscaling
    return AgentSpec.model_validate(body)


AUTO = {"minReplicas": 2, "maxReplicas": 5}


def test_fixed_replicas_are_applied() -> None:
    plan = plan_replicas(_spec(3), live_replicas=1, hpa_exists=False, previous=None)
    assert (plan.apply, plan.hand_over, plan.status.owner, plan.status.spec_replicas) == (3, None, "Agent", 3)


def test_switching_to_autoscaling_hands_the_current_count_over() -> None:
    # kubectl scale agt/x --replicas=3, then autoscaling added: 3 pods stay, the HPA takes over from there.
    plan = plan_replicas(
        _spec(3, AUTO), live_replicas=3, hpa_exists=False, previous=ScalingStatus(owner="Agent", spec_replicas=3)
    )
    assert plan.apply is None and plan.hand_over == 3
    assert plan.status.owner == "HorizontalPodAutoscaler"


def test_hand_over_count_is_within_the_autoscaler_bounds() -> None:
    assert plan_replicas(_spec(1, AUTO), live_replicas=1, hpa_exists=False, previous=None).hand_over == 2
    assert plan_replicas(_spec(9, AUTO), live_replicas=9, hpa_exists=False, previous=None).hand_over == 5


def test_new_autoscaled_deployment_starts_at_min_replicas() -> None:
    plan = plan_replicas(_spec(1, AUTO), live_replicas=None, hpa_exists=False, previous=None)
    assert plan.apply == 2 and plan.hand_over == 2


def test_a_deployment_recreated_under_an_existing_hpa_starts_at_min_replicas() -> None:
    plan = plan_replicas(
        _spec(1, AUTO),
        live_replicas=None,
        hpa_exists=True,
        previous=ScalingStatus(owner="HorizontalPodAutoscaler", spec_replicas=1),
    )
    assert plan.apply == 2 and plan.hand_over == 2


def test_once_the_hpa_exists_the_operator_leaves_the_count_alone() -> None:
    plan = plan_replicas(
        _spec(1, AUTO),
        live_replicas=4,
        hpa_exists=True,
        previous=ScalingStatus(owner="HorizontalPodAutoscaler", spec_replicas=1),
    )
    assert plan.apply is None and plan.hand_over is None


def test_removing_autoscaling_keeps_the_count_until_a_new_explicit_value() -> None:
    autoscaled = ScalingStatus(owner="HorizontalPodAutoscaler", spec_replicas=1)
    held = plan_replicas(_spec(1), live_replicas=4, hpa_exists=True, previous=autoscaled)
    assert held.apply is None and held.status.owner == "Deployment" and held.status.spec_replicas == 1
    # Still held after the HPA is gone, as long as spec.replicas is what it was.
    again = plan_replicas(_spec(1), live_replicas=4, hpa_exists=False, previous=held.status)
    assert again.apply is None and again.status == held.status
    # A new value (kubectl scale agt/x --replicas=2) is the user's explicit count.
    taken = plan_replicas(_spec(2), live_replicas=4, hpa_exists=False, previous=held.status)
    assert taken.apply == 2 and taken.status.owner == "Agent"


def test_without_a_status_an_existing_hpa_means_the_count_is_kept() -> None:
    # An Agent last reconciled by an operator that wrote no status.scaling.
    plan = plan_replicas(_spec(1), live_replicas=4, hpa_exists=True, previous=None)
    assert plan.apply is None and plan.status.owner == "Deployment"


def test_a_count_changed_together_with_removing_autoscaling_is_applied() -> None:
    plan = plan_replicas(
        _spec(3),
        live_replicas=4,
        hpa_exists=True,
        previous=ScalingStatus(owner="HorizontalPodAutoscaler", spec_replicas=1),
    )
    assert plan.apply == 3 and plan.status.owner == "Agent"


@given(
    replicas=st.integers(0, 50),
    live=st.none() | st.integers(0, 50),
    hpa=st.booleans(),
    low=st.integers(1, 10),
    span=st.integers(0, 10),
    previous=st.none()
    | st.builds(
        ScalingStatus,
        owner=st.sampled_from(["Agent", "HorizontalPodAutoscaler", "Deployment"]),
        spec_replicas=st.none() | st.integers(0, 50),
    ),
)
def test_the_count_never_goes_unowned(
    replicas: int, live: int | None, hpa: bool, low: int, span: int, previous: ScalingStatus | None
) -> None:
    """Whenever the operator stops sending spec.replicas of an existing Deployment, someone else owns it
    (the hand-over manager now, the HPA, or the HPA's last write while the count is held)."""
    autoscaling = {"minReplicas": low, "maxReplicas": low + span}
    for spec in (_spec(replicas, autoscaling), _spec(replicas)):
        plan = plan_replicas(spec, live, hpa, previous)
        if spec.autoscaling is None and plan.apply is None:
            assert live is not None
            assert previous.owner != "Agent" if previous is not None else hpa
        if spec.autoscaling is not None and (not hpa or live is None):
            assert plan.hand_over is not None and low <= plan.hand_over <= low + span
        if plan.apply is None and plan.hand_over is None:
            assert hpa or (previous is not None and previous.owner != "Agent")
        if spec.autoscaling is None and plan.apply is not None:
            assert plan.apply == replicas and plan.status.owner == "Agent"
