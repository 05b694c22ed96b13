"""Canary size from the weight when pods, not a router, split the traffic."""

from __future__ import annotations

import pytest
from agentfleet_operator.rollout.traffic import achieved_weight, replicas_for_weight
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("stable", "weight", "canary"),
    [
        (4, 0, 0),
        (4, 10, 1),
        (4, 20, 1),
        (4, 50, 4),
        (9, 10, 1),
        (10, 10, 2),
        (3, 25, 1),
        (2, 100, 2),
        (0, 10, 1),
        (0, 100, 1),
        (1, 99, 99),
        (5, -3, 0),
        (5, 140, 5),
    ],
)
def test_replicas_for_weight(stable: int, weight: int, canary: int) -> None:
    assert replicas_for_weight(stable, weight) == canary


@given(stable=st.integers(1, 500), weight=st.integers(1, 99))
def test_canary_share_reaches_the_weight_with_the_fewest_pods(stable: int, weight: int) -> None:
    canary = replicas_for_weight(stable, weight)
    assert canary >= 1
    assert canary * 100 >= weight * (canary + stable), "share at least the weight"
    if canary > 1:
        fewer = canary - 1
        assert fewer * 100 < weight * (fewer + stable), "one pod fewer would fall short"


@pytest.mark.parametrize(
    ("stable", "canary", "weight"),
    [(0, 0, 0), (4, 0, 0), (0, 3, 100), (4, 1, 20), (2, 1, 33), (1, 2, 67), (1, 1, 50)],
)
def test_achieved_weight(stable: int, canary: int, weight: int) -> None:
    assert achieved_weight(stable, canary) == weight


@given(stable=st.integers(0, 1000), canary=st.integers(0, 1000))
def test_achieved_weight_is_a_percentage(stable: int, canary: int) -> None:
    assert 0 <= achieved_weight(stable, canary) <= 100
