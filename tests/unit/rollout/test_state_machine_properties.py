"""Property tests: whatever happens (spec changes, any verdicts, any intents, any time jumps, a handler that
hands in measurements nobody asked for), the rollout's invariants hold and nothing passes an analysis step
without an all-Passed measurement or a person's promote."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agentfleet_operator.api.agent import AgentSpec, AnalysisMeasurement, RevisionStatus, RolloutStatus
from agentfleet_operator.rollout.state_machine import MAX_MEASUREMENTS, Decision, Observations, decide
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rollout_testkit import T0, analysis, make_spec, measurement, pause, set_weight

REVISIONS = ["r1", "r2", "r3"]
VERDICTS = ["Passed", "Failed", "Inconclusive"]

steps_strategy = st.lists(
    st.one_of(
        st.integers(1, 100).map(set_weight),
        st.sampled_from([None, "1s", "30s", "5m"]).map(pause),
        st.just(analysis()),
    ),
    min_size=1,
    max_size=5,
)


@st.composite
def specs(draw: st.DrawFn) -> AgentSpec:
    return make_spec(
        draw(steps_strategy),
        strategy=draw(st.sampled_from(["Canary", "Canary", "Canary", "RollingUpdate"])),
        deadline=draw(st.sampled_from([10, 60, 600])),
        failure_limit=draw(st.integers(1, 3)),
        inconclusive_limit=draw(st.integers(1, 3)),
        interval=draw(st.sampled_from(["1s", "30s", "2m"])),
    )


@dataclass(frozen=True)
class Action:
    desired: str
    ready: bool
    intents: dict[str, str]
    asked_verdicts: list[str]  # what the handler's analysis returns when the machine asks for one
    unasked: list[str] | None  # measurements a confused handler hands in without being asked
    jump: float


actions = st.builds(
    Action,
    desired=st.sampled_from(REVISIONS),
    ready=st.booleans(),
    intents=st.dictionaries(
        st.sampled_from(["promote", "abort", "retry"]),
        st.sampled_from(["step", "full", "step:1", "step:2", "x", "y"]),
        max_size=2,
    ),
    asked_verdicts=st.lists(st.sampled_from(VERDICTS), max_size=3),
    unasked=st.none() | st.lists(st.sampled_from(VERDICTS), max_size=2),
    jump=st.sampled_from([0, 0.5, 1, 10, 30, 61, 600, 3600]),
)


def check_invariants(spec: AgentSpec, d: Decision) -> None:
    r, rev = d.rollout, d.revisions
    assert 0 <= r.weight <= 100
    assert rev.stable != "", "stable is never empty after the first revision"
    assert rev.canary != rev.stable, "never the same revision on both tracks"
    assert (rev.canary == "") == (r.phase in ("Idle", "Aborted")), (rev, r.phase)
    assert (r.aborted_revision != "") == (r.phase == "Aborted")
    if r.phase in ("Idle", "Aborted"):
        assert r.weight == 0
    if r.phase == "Idle":
        assert r.step == 0
    if rev.canary:
        assert spec.rollout is not None and spec.rollout.canary is not None
        assert 0 <= r.step < len(spec.rollout.canary.steps)
    assert len(r.analysis) <= MAX_MEASUREMENTS
    assert not (d.promoted and d.rolled_back)
    assert d.requeue_after is None or d.requeue_after >= 0
    assert RolloutStatus.model_validate(r.to_wire()) == r
    for kind, reason, message in d.events:
        assert kind in ("Normal", "Warning") and reason[:1].isupper() and " " not in reason and message


def left_analysis_step(spec: AgentSpec, before: tuple[RevisionStatus, RolloutStatus], d: Decision) -> bool:
    """Did this call move the canary off an analysis step (to the next step or to stable)?"""
    rev, r = before
    if not rev.canary or spec.rollout is None or spec.rollout.canary is None:
        return False
    steps = spec.rollout.canary.steps
    index = min(r.step, len(steps) - 1)
    if steps[index].analysis is None:
        return False
    same_run = d.revisions.canary == rev.canary and d.rollout.started_at == r.started_at
    return (same_run and d.rollout.step > index) or (d.promoted and d.revisions.stable == rev.canary)


def all_passed(ms: list[AnalysisMeasurement] | None) -> bool:
    return bool(ms) and all(m.verdict == "Passed" for m in ms or [])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), script=st.lists(actions, min_size=1, max_size=30))
def test_invariants_hold_for_any_history(spec: AgentSpec, script: list[Action]) -> None:
    now = T0
    revisions, rollout = RevisionStatus(), RolloutStatus()
    # Per canary run: analysis steps passed by measurement, and whether a person promoted.
    passed: set[int] = set()
    human = False

    def call(obs: Observations) -> Decision:
        nonlocal revisions, rollout, passed, human
        before = (revisions, rollout)
        new_promote = "promote" in obs.intents and obs.intents["promote"] != rollout.handled_intents.get("promote")
        d = decide(spec, revisions, rollout, obs, now)
        check_invariants(spec, d)
        if left_analysis_step(spec, before, d):
            assert all_passed(obs.measurements) or new_promote, "an analysis step was left without a pass"
        restarted = d.revisions.canary and d.rollout.started_at != before[1].started_at
        if restarted:
            passed, human = set(), False
        elif before[0].canary:
            human = human or new_promote
            steps = spec.rollout.canary.steps if spec.rollout and spec.rollout.canary else []
            if all_passed(obs.measurements) and before[1].step < len(steps) and steps[before[1].step].analysis:
                passed.add(before[1].step)
        if d.promoted:
            steps = spec.rollout.canary.steps if spec.rollout and spec.rollout.canary else []
            analysis_steps = {i for i, s in enumerate(steps) if s.analysis is not None}
            assert human or analysis_steps <= passed, "promoted without passing every analysis step"
            assert d.revisions.stable == before[0].canary
        revisions, rollout = d.revisions, d.rollout
        return d

    for action in script:
        now += timedelta(seconds=action.jump)
        unasked = None if action.unasked is None else [measurement(v, now) for v in action.unasked]
        obs = Observations(action.desired, action.ready, action.intents, unasked)
        d = call(obs)
        if d.run_analysis:
            asked = [measurement(v, now) for v in action.asked_verdicts]
            call(Observations(action.desired, action.ready, action.intents, asked))


@settings(max_examples=200, deadline=None)
@given(spec=specs(), script=st.lists(actions, min_size=1, max_size=20))
def test_same_input_same_output(spec: AgentSpec, script: list[Action]) -> None:
    """Pure: replaying the same calls gives the same decisions."""

    def replay() -> list[Decision]:
        now, revisions, rollout, out = T0, RevisionStatus(), RolloutStatus(), []
        for action in script:
            now += timedelta(seconds=action.jump)
            d = decide(spec, revisions, rollout, Observations(action.desired, action.ready, action.intents), now)
            revisions, rollout = d.revisions, d.rollout
            out.append(d)
        return out

    assert replay() == replay()


@settings(max_examples=200, deadline=None)
@given(spec=specs(), desired=st.sampled_from(REVISIONS), jumps=st.lists(st.floats(0, 5000), max_size=20))
def test_without_people_or_data_a_canary_never_promotes_through_analysis(
    spec: AgentSpec, desired: str, jumps: list[float]
) -> None:
    """Only time passing and ready pods, every analysis inconclusive: a canary with an analysis step
    ends paused or rolled back, never promoted."""
    steps = spec.rollout.canary.steps if spec.rollout and spec.rollout.canary else []
    has_analysis = any(s.analysis is not None for s in steps)
    now, revisions, rollout = T0, RevisionStatus(stable="base"), RolloutStatus()
    for jump in [0.0, *jumps]:
        now += timedelta(seconds=jump)
        d = decide(spec, revisions, rollout, Observations(desired, canary_ready=True), now)
        if d.run_analysis:
            unsure: list[Any] = [measurement("Inconclusive", now), measurement("Passed", now)]
            d = decide(spec, d.revisions, d.rollout, Observations(desired, True, {}, unsure), now)
        if has_analysis and spec.rollout and spec.rollout.strategy == "Canary":
            assert not d.promoted
        revisions, rollout = d.revisions, d.rollout
