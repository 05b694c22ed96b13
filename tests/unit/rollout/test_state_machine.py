"""decide(): every step kind, pauses, deadlines, intents in every phase, aborts, retries and reverts."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta

import pytest
from agentfleet_operator.api.agent import AgentSpec, RevisionStatus, RolloutStatus
from agentfleet_operator.rollout.state_machine import (
    INTENT_ANNOTATIONS,
    MAX_MEASUREMENTS,
    READINESS_POLL_SECONDS,
    Observations,
    decide,
    intents_from_annotations,
)
from rollout_testkit import (
    T0,
    Driver,
    analysis,
    make_spec,
    measurement,
    pause,
    plain_spec,
    set_weight,
    started,
)

# ---------------------------------------------------------------- without a canary


@pytest.mark.parametrize("spec", [plain_spec(), make_spec(strategy="RollingUpdate")], ids=["no-rollout", "rolling"])
def test_rolling_update_replaces_stable_at_once(spec: AgentSpec) -> None:
    d = Driver(spec)
    first = d.step("r1")
    assert (first.revisions.stable, first.revisions.canary) == ("r1", "")
    assert first.events == []
    second = d.step("r2")
    assert (second.revisions.stable, second.revisions.canary) == ("r2", "")
    assert (second.rollout.phase, second.rollout.weight) == ("Idle", 0)
    assert d.reasons() == ["RollingUpdate"]
    assert not second.run_analysis and second.requeue_after is None


def test_first_revision_becomes_stable_without_a_canary() -> None:
    d = Driver(make_spec())
    decision = d.step("r1", ready=True)
    assert decision.revisions == RevisionStatus(stable="r1", canary="")
    assert decision.rollout.phase == "Idle"
    assert not decision.promoted and not decision.rolled_back


def test_nothing_changes_while_spec_equals_stable() -> None:
    d = Driver(make_spec())
    first = d.step("r1")
    again = d.step("r1", after=3600)
    assert again.revisions == first.revisions
    assert again.rollout == first.rollout
    assert again.events == []


def test_switching_to_rolling_update_mid_canary_drops_the_canary() -> None:
    d = started(make_spec())
    d.spec = make_spec(strategy="RollingUpdate")
    decision = d.step("c1")
    assert decision.revisions == RevisionStatus(stable="c1", canary="")
    assert "CanaryCancelled" in d.reasons()
    assert decision.rollout.phase == "Idle"


def test_empty_desired_revision_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        decide(make_spec(), RevisionStatus(), RolloutStatus(), Observations(desired_revision=""), T0)


# ---------------------------------------------------------------- starting and walking


def test_spec_change_starts_a_canary_at_the_first_step() -> None:
    d = Driver(make_spec())
    d.step("s1")
    decision = d.step("c1", ready=True)  # readiness of no canary must not count
    r = decision.rollout
    assert decision.revisions == RevisionStatus(stable="s1", canary="c1")
    assert (r.phase, r.step, r.weight) == ("Progressing", 0, 10)
    assert r.started_at == r.step_started_at == r.last_progress_at == "2025-01-01T12:00:00Z"
    assert (r.failures, r.inconclusive, r.analysis, r.aborted_revision) == (0, 0, [], "")
    assert d.reasons() == ["CanaryStarted"]
    assert decision.requeue_after == READINESS_POLL_SECONDS


def test_set_weight_waits_for_canary_pods_then_moves_on() -> None:
    d = started(make_spec([set_weight(10), set_weight(40), pause()]))
    waiting = d.step("c1", ready=False, after=5)
    assert (waiting.rollout.step, waiting.rollout.weight, waiting.rollout.phase) == (0, 10, "Progressing")
    assert "waiting for canary pods" in waiting.rollout.message
    moved = d.step("c1", ready=True, after=5)
    # Step 2 sets a new weight: readiness seen now is about 10%, so it waits again.
    assert (moved.rollout.step, moved.rollout.weight) == (1, 40)
    assert moved.rollout.step_started_at == moved.rollout.last_progress_at
    last = d.step("c1", ready=True, after=5)
    assert (last.rollout.step, last.rollout.phase) == (2, "Paused")


def test_equal_consecutive_weights_need_no_second_wait() -> None:
    d = started(make_spec([set_weight(20), set_weight(20), pause()]))
    decision = d.step("c1", ready=True)
    assert (decision.rollout.step, decision.rollout.phase) == (2, "Paused")


def test_set_weight_100_is_allowed() -> None:
    d = started(make_spec([set_weight(100)]))
    assert d.rollout.weight == 100
    decision = d.step("c1", ready=True)
    assert decision.promoted


def test_timed_pause_waits_its_duration() -> None:
    d = started(make_spec([pause("60s"), set_weight(30)]))
    r = d.rollout
    assert (r.phase, r.weight) == ("Paused", 0)
    assert d.last is not None and d.last.requeue_after == 60
    assert "paused until 2025-01-01T12:01:00Z" in r.message
    early = d.step("c1", after=59.5)
    assert early.rollout.phase == "Paused" and early.requeue_after == pytest.approx(0.5)
    done = d.step("c1", after=0.5)
    assert (done.rollout.step, done.rollout.weight, done.rollout.phase) == (1, 30, "Progressing")


def test_compound_and_subsecond_durations() -> None:
    d = started(make_spec([pause("1h30m"), pause("500ms"), set_weight(5)]))
    assert d.last is not None and d.last.requeue_after == 5400
    d.step("c1", after=5400)
    assert d.rollout.step == 1 and d.last.requeue_after == pytest.approx(0.5)
    d.step("c1", after=0.5)
    assert d.rollout.step == 2


def test_indefinite_pause_waits_for_a_person_and_no_deadline() -> None:
    d = started(make_spec([set_weight(10), pause(), set_weight(50)], deadline=60))
    d.step("c1", ready=True, after=1)
    assert d.phase == "Paused" and "paused until promoted" in d.rollout.message
    assert d.last is not None and d.last.requeue_after is None
    day = d.step("c1", after=86400)
    assert day.rollout.phase == "Paused" and not day.rolled_back
    moved = d.step("c1", promote="step")
    assert (moved.rollout.step, moved.rollout.weight) == (2, 50)
    assert "PromoteRequested" in d.reasons()


def test_analysis_step_asks_for_measurements_and_passes_on_all_passed() -> None:
    d = started(make_spec([analysis(), set_weight(50)]))
    assert d.last is not None and d.last.run_analysis
    assert d.rollout.message.endswith("analysis running")
    decision = d.measure("c1", "Passed", "Passed", "Passed")
    assert not decision.run_analysis
    assert (decision.rollout.step, decision.rollout.weight) == (1, 50)
    assert "AnalysisPassed" in d.reasons()
    assert [m.verdict for m in decision.rollout.analysis] == ["Passed"] * 3


def test_after_the_last_step_the_canary_is_promoted() -> None:
    d = started(make_spec([set_weight(10)]))
    decision = d.step("c1", ready=True, after=1)
    assert decision.promoted and not decision.rolled_back
    assert decision.revisions == RevisionStatus(stable="c1", canary="")
    assert (decision.rollout.phase, decision.rollout.weight, decision.rollout.step) == ("Idle", 0, 0)
    assert decision.rollout.message == "promoted c1"
    assert d.reasons() == ["Promoted"]
    assert d.step("c1", after=1).events == []


def test_full_walk_of_the_documented_example() -> None:
    d = started(make_spec())  # setWeight 10, pause 60s, analysis, setWeight 50
    assert d.rollout.weight == 10
    d.step("c1", ready=True, after=3)
    assert d.phase == "Paused"
    d.step("c1", after=60)
    assert d.last is not None and d.last.run_analysis
    d.measure("c1", "Passed", "Passed")
    assert d.rollout.weight == 50
    final = d.step("c1", ready=True, after=3)
    assert final.promoted and final.revisions.stable == "c1"


# ---------------------------------------------------------------- analysis verdicts


def test_failed_measurement_counts_and_retries_after_the_interval() -> None:
    d = started(make_spec([analysis()], failure_limit=2, interval="30s"))
    decision = d.measure("c1", "Passed", "Failed")
    r = decision.rollout
    assert (r.failures, r.phase, r.step) == (1, "Progressing", 0)
    assert decision.requeue_after == 30 and not decision.run_analysis
    assert "AnalysisFailed" in d.reasons()
    assert not d.step("c1", after=29).run_analysis
    assert d.step("c1", after=1).run_analysis


def test_failure_limit_aborts() -> None:
    d = started(make_spec([set_weight(20), analysis()], failure_limit=2))
    d.step("c1", ready=True)
    d.measure("c1", "Failed")
    d.step("c1", after=30)
    decision = d.measure("c1", "Failed", "Inconclusive")
    assert decision.rolled_back and decision.abort_reason == "AnalysisFailed"
    assert decision.revisions == RevisionStatus(stable="s1", canary="")
    r = decision.rollout
    assert (r.phase, r.weight, r.aborted_revision, r.failures) == ("Aborted", 0, "c1", 2)
    assert "rolled back c1" in r.message and "analysis failed 2 times" in r.message
    assert ("Warning", "RolledBack") in [(t, reason) for t, reason, _ in decision.events]


def test_inconclusive_streak_pauses_for_a_person_never_passes() -> None:
    d = started(make_spec([analysis(), set_weight(50)], inconclusive_limit=3, deadline=60))
    for n in (1, 2):
        decision = d.measure("c1", "Passed", "Inconclusive")
        assert (decision.rollout.inconclusive, decision.rollout.phase) == (n, "Progressing")
        assert decision.requeue_after == 30
        assert d.step("c1", after=30).run_analysis
    decision = d.measure("c1", "Inconclusive", "Passed")
    r = decision.rollout
    assert (r.phase, r.step, r.weight) == ("Paused", 0, 0)
    assert r.message.startswith("step 1/2: analysis inconclusive 3 times in a row: ")
    assert r.message.endswith("; promote or abort")
    assert "AnalysisInconclusive" in d.reasons()
    # Waiting for a person: no more queries, no deadline, and late measurements do not resume it.
    later = d.step("c1", after=7200)
    assert later.rollout.phase == "Paused" and not later.run_analysis and not later.rolled_back
    ignored = d.measure("c1", "Passed", "Passed")
    assert ignored.rollout.step == 0 and ignored.rollout.phase == "Paused"
    resumed = d.step("c1", promote="step")
    assert (resumed.rollout.step, resumed.rollout.weight, resumed.rollout.inconclusive) == (1, 50, 0)


def test_a_pass_resets_the_inconclusive_streak() -> None:
    d = started(make_spec([analysis(), analysis(), pause()], inconclusive_limit=2))
    d.measure("c1", "Inconclusive")
    assert d.rollout.inconclusive == 1
    d.step("c1", after=30)
    d.measure("c1", "Passed")
    assert (d.rollout.step, d.rollout.inconclusive) == (1, 0)


def test_a_failure_breaks_the_inconclusive_streak() -> None:
    d = started(make_spec([analysis()], inconclusive_limit=2, failure_limit=5))
    d.measure("c1", "Inconclusive")
    d.step("c1", after=30)
    d.measure("c1", "Failed")
    assert (d.rollout.inconclusive, d.rollout.failures, d.phase) == (0, 1, "Progressing")


def test_no_measurements_at_all_is_inconclusive() -> None:
    d = started(make_spec([analysis()], inconclusive_limit=1))
    decision = d.step("c1", measurements=[])
    assert decision.rollout.phase == "Paused" and not decision.promoted
    assert "returned no measurements" in decision.rollout.message


def test_measurements_for_another_step_are_not_counted() -> None:
    d = started(make_spec([set_weight(10), analysis()]))
    decision = d.step("c1", measurements=[measurement("Passed")])
    assert decision.rollout.step == 0 and decision.rollout.analysis == []


def test_one_measurement_passes_one_analysis_step_only() -> None:
    d = started(make_spec([analysis(), analysis(), pause()], interval="30s"))
    decision = d.measure("c1", "Passed")
    assert decision.rollout.step == 1 and not decision.run_analysis
    assert decision.requeue_after == 30
    again = d.step("c1", after=30)
    assert again.run_analysis and again.rollout.step == 1


def test_measurement_history_is_capped() -> None:
    d = started(make_spec([analysis()], inconclusive_limit=100))
    for _ in range(10):
        d.measure("c1", "Inconclusive", "Inconclusive", "Inconclusive")
        d.step("c1", after=30)
    assert len(d.rollout.analysis) == MAX_MEASUREMENTS


def test_analysis_step_without_settings_waits_for_a_person() -> None:
    # The CRD's CEL rule forbids this; the machine still must not treat it as a pass.
    d = started(make_spec([analysis()], with_analysis=False))
    assert d.phase == "Paused" and "analysis is missing" in d.rollout.message
    assert d.last is not None and not d.last.run_analysis


def test_first_measurement_of_a_step_is_due_at_once_then_per_interval() -> None:
    d = started(make_spec([pause("10s"), analysis()], interval="1m"))
    entered = d.step("c1", after=10)
    assert entered.run_analysis
    d.measure("c1", "Inconclusive")
    assert not d.step("c1", after=59).run_analysis
    assert d.step("c1", after=1).run_analysis


# ---------------------------------------------------------------- progress deadline


def test_pods_never_ready_hit_the_progress_deadline() -> None:
    d = started(make_spec([set_weight(10)], deadline=600))
    near = d.step("c1", after=595)
    assert near.rollout.phase == "Progressing" and near.requeue_after == pytest.approx(5)
    over = d.step("c1", after=5)
    assert over.rolled_back and over.abort_reason == "ProgressDeadlineExceeded"
    assert over.rollout.phase == "Aborted" and over.revisions.canary == ""
    assert "no progress for 600s" in over.rollout.message
    assert [reason for _, reason, _ in over.events] == ["ProgressDeadlineExceeded", "RolledBack"]


def test_ready_pods_after_a_long_outage_advance_rather_than_abort() -> None:
    d = started(make_spec([set_weight(10), pause()], deadline=60))
    decision = d.step("c1", ready=True, after=3600)
    assert not decision.rolled_back and decision.rollout.step == 1


def test_deadline_does_not_run_during_a_long_timed_pause() -> None:
    d = started(make_spec([pause("2h"), set_weight(10)], deadline=60))
    assert d.step("c1", after=3600).rollout.phase == "Paused"
    after = d.step("c1", after=3600)
    assert (after.rollout.step, after.rollout.phase) == (1, "Progressing")
    # The clock restarted when the pause ended.
    assert d.step("c1", after=59).rollout.phase == "Progressing"
    assert d.step("c1", after=1).rolled_back


def test_deadline_catches_analysis_results_that_never_come_back() -> None:
    d = started(make_spec([analysis()], deadline=60, interval="30s"))
    assert d.step("c1", after=89).run_analysis
    lost = d.step("c1", after=1)
    assert lost.rolled_back and lost.abort_reason == "ProgressDeadlineExceeded"


def test_each_measurement_counts_as_progress() -> None:
    d = started(make_spec([analysis()], deadline=60, interval="50s", failure_limit=10, inconclusive_limit=10))
    for _ in range(5):
        d.measure("c1", "Inconclusive")
        decision = d.step("c1", after=50)
        assert decision.run_analysis and not decision.rolled_back


# ---------------------------------------------------------------- abort, retry, supersede, revert


def _aborted() -> Driver:
    d = started(make_spec([set_weight(10), pause()]))
    d.step("c1", abort="now")
    assert d.phase == "Aborted"
    return d


def test_abort_intent_rolls_back() -> None:
    d = started(make_spec([set_weight(10), pause()]))
    decision = d.step("c1", abort="2025-01-01")
    assert decision.rolled_back and decision.abort_reason == "AbortRequested"
    assert decision.revisions == RevisionStatus(stable="s1", canary="")
    assert (decision.rollout.weight, decision.rollout.aborted_revision) == (0, "c1")
    assert decision.rollout.handled_intents == {"abort": "2025-01-01"}
    assert f"{INTENT_ANNOTATIONS['abort']}=2025-01-01" in decision.rollout.message


def test_aborted_stays_aborted_while_the_spec_asks_for_that_revision() -> None:
    d = _aborted()
    frozen = d.rollout
    for _ in range(3):
        decision = d.step("c1", ready=True, after=1000)
        assert decision.rollout == frozen and decision.events == [] and decision.revisions.canary == ""
        assert decision.requeue_after is None and not decision.rolled_back


def test_new_revision_after_abort_starts_a_new_canary() -> None:
    d = _aborted()
    decision = d.step("c2")
    assert decision.revisions == RevisionStatus(stable="s1", canary="c2")
    assert (decision.rollout.phase, decision.rollout.aborted_revision) == ("Progressing", "")
    assert d.reasons() == ["CanaryStarted"]


def test_reverting_to_stable_clears_the_abort() -> None:
    d = _aborted()
    decision = d.step("s1")
    assert decision.revisions == RevisionStatus(stable="s1", canary="")
    assert (decision.rollout.phase, decision.rollout.aborted_revision) == ("Idle", "")
    assert d.reasons() == ["AbortCleared"]
    # and the once-aborted revision may be tried again by asking for it again
    assert d.step("c1").revisions.canary == "c1"


def test_reverting_to_stable_mid_canary_cancels_it() -> None:
    d = started(make_spec([set_weight(10), pause()]))
    decision = d.step("s1")
    assert decision.revisions == RevisionStatus(stable="s1", canary="")
    assert decision.rollout.phase == "Idle" and decision.rollout.weight == 0
    assert not decision.rolled_back and not decision.promoted
    assert d.reasons() == ["CanaryCancelled"]


def test_a_new_revision_supersedes_a_running_canary_cleanly() -> None:
    d = started(make_spec([set_weight(10), analysis(), pause()], failure_limit=3))
    d.step("c1", ready=True)
    d.measure("c1", "Failed")
    assert d.rollout.failures == 1
    decision = d.step("c2", ready=True, after=5)
    r = decision.rollout
    assert decision.revisions == RevisionStatus(stable="s1", canary="c2")
    assert (r.step, r.weight, r.failures, r.inconclusive, r.analysis) == (0, 10, 0, 0, [])
    assert r.started_at == r.step_started_at == "2025-01-01T12:00:05Z"
    assert d.reasons() == ["CanarySuperseded"]


def test_retry_restarts_the_aborted_revision_from_the_first_step() -> None:
    d = started(make_spec([set_weight(10), analysis()], failure_limit=1))
    d.step("c1", ready=True)
    d.measure("c1", "Failed")
    assert d.phase == "Aborted" and d.rollout.failures == 1
    decision = d.step("c1", retry="1", after=100)
    r = decision.rollout
    assert decision.revisions == RevisionStatus(stable="s1", canary="c1")
    assert (r.phase, r.step, r.weight, r.failures, r.aborted_revision) == ("Progressing", 0, 10, 0, "")
    assert "CanaryRetried" in d.reasons()
    assert r.handled_intents["retry"] == "1"


# ---------------------------------------------------------------- intents in every phase


def _in_phase(name: str) -> Driver:
    """A driver whose rollout is in the named situation (stable s1, canary c1 unless idle/aborted)."""
    steps = {
        "idle": [set_weight(10)],
        "waiting-pods": [set_weight(10), pause()],
        "paused": [pause(), set_weight(50)],
        "timed-pause": [pause("1h"), set_weight(50)],
        "analysis": [analysis(), set_weight(50)],
        "inconclusive-paused": [analysis(), set_weight(50)],
        "aborted": [set_weight(10), pause()],
    }[name]
    d = Driver(make_spec(steps, inconclusive_limit=1))
    d.step("s1")
    if name == "idle":
        return d
    d.step("c1")
    if name == "inconclusive-paused":
        d.measure("c1", "Inconclusive")
        assert d.phase == "Paused"
    if name == "aborted":
        d.step("c1", abort="first")
        assert d.phase == "Aborted"
    return d


RUNNING = ["waiting-pods", "paused", "timed-pause", "analysis", "inconclusive-paused"]


@pytest.mark.parametrize("phase", ["idle", *RUNNING, "aborted"])
@pytest.mark.parametrize("intent", [("promote", "step"), ("promote", "full"), ("abort", "x"), ("retry", "x")])
def test_every_intent_in_every_phase(phase: str, intent: tuple[str, str]) -> None:
    d = _in_phase(phase)
    before = d.rollout
    kind, value = intent
    desired = "s1" if phase == "idle" else "c1"
    decision = d.step(desired, after=1, **{kind: value})
    r = decision.rollout
    assert r.handled_intents[kind] == value, "every intent value is recorded as handled"

    if phase == "idle" or (phase == "aborted" and kind != "retry") or (phase in RUNNING and kind == "retry"):
        assert "IntentIgnored" in d.reasons()
        assert decision.revisions.canary == ("" if phase in ("idle", "aborted") else "c1")
        assert r.phase == ("Idle" if phase == "idle" else before.phase if phase != "aborted" else "Aborted")
        return
    if phase == "aborted":  # retry
        assert decision.revisions.canary == "c1" and r.phase == "Progressing" and r.step == 0
    elif kind == "abort":
        assert decision.rolled_back and r.phase == "Aborted" and decision.revisions.canary == ""
    elif value == "full":
        assert decision.promoted and decision.revisions == RevisionStatus(stable="c1", canary="")
    else:  # promote step: the current step (index 0) is skipped
        assert r.step == 1
        assert (r.phase, r.weight) == (("Paused", 10) if phase == "waiting-pods" else ("Progressing", 50))
        assert not decision.promoted and not decision.rolled_back
    # Acted on once, for each of the three intents: the driver keeps the annotation, so the next
    # reconcile sees the same value again and must neither act on it nor undo what it did.
    again = d.step(desired, after=1)  # the spec still asks for the same revision
    acted = {"PromoteRequested", "AbortRequested", "RetryRequested"}
    assert acted.isdisjoint(reason for _, reason, _ in again.events), again.events
    assert not again.rolled_back and not again.promoted
    assert again.revisions == decision.revisions
    assert (again.rollout.phase, again.rollout.step) == (r.phase, r.step)


def test_intents_act_once_per_distinct_value() -> None:
    d = started(make_spec([pause(), pause(), pause(), set_weight(10)]))
    assert d.step("c1", promote="step").rollout.step == 1
    assert d.step("c1", promote="step").rollout.step == 1  # same value: already handled
    assert d.step("c1", promote="step:2").rollout.step == 2  # a new value repeats the intent
    assert d.step("c1", promote="full:3").promoted


def test_unknown_promote_value_is_ignored_with_a_warning() -> None:
    d = started(make_spec([pause(), set_weight(10)]))
    decision = d.step("c1", promote="yes please")
    assert decision.rollout.step == 0
    assert ("Warning", "IntentIgnored") in [(t, r) for t, r, _ in decision.events]
    assert decision.rollout.handled_intents["promote"] == "yes please"


def test_abort_wins_over_a_promote_arriving_with_it() -> None:
    d = started(make_spec([pause(), set_weight(10)]))
    decision = d.step("c1", promote="full", abort="a")
    assert decision.rolled_back and not decision.promoted
    assert "IntentIgnored" in d.reasons()
    assert decision.rollout.handled_intents == {"promote": "full", "abort": "a"}


def test_intents_arriving_with_a_new_revision_are_not_applied_to_it() -> None:
    d = Driver(make_spec([pause(), set_weight(10)]))
    d.step("s1")
    decision = d.step("c1", promote="full")
    assert not decision.promoted and decision.revisions.canary == "c1"
    assert d.reasons() == ["IntentIgnored", "CanaryStarted"]


def test_promote_step_on_the_last_step_promotes() -> None:
    d = started(make_spec([set_weight(10), pause()]))
    d.step("c1", ready=True)
    assert d.step("c1", promote="step").promoted


def test_intents_present_from_the_start_are_recorded_not_acted_on_later() -> None:
    d = Driver(make_spec([pause(), set_weight(10)]))
    d.step("s1", promote="full", abort="old")
    decision = d.step("c1")
    assert decision.revisions.canary == "c1" and not decision.promoted and not decision.rolled_back


# ---------------------------------------------------------------- odd input


def test_steps_shrinking_under_a_running_canary_redo_the_last_step() -> None:
    d = started(make_spec([pause("1s"), pause("1s"), analysis(), set_weight(10)]))
    d.step("c1", after=1)
    d.step("c1", after=1)
    assert d.rollout.step == 2
    d.spec = make_spec([analysis()])
    d.rollout = d.rollout.model_copy(update={"step": 3})
    decision = d.step("c1")
    assert decision.rollout.step == 0 and decision.run_analysis and not decision.promoted


def test_hand_edited_inconsistent_status_recovers() -> None:
    spec = make_spec([set_weight(10), pause()])
    obs = Observations(desired_revision="c1")
    weird = RolloutStatus(phase="Idle", step=0, weight=0, step_started_at="not a time")
    decision = decide(spec, RevisionStatus(stable="s1", canary="c1"), weird, obs, T0)
    assert decision.rollout.phase == "Progressing" and decision.rollout.weight == 10
    assert decision.rollout.step_started_at == "2025-01-01T12:00:00Z"


def test_naive_now_is_taken_as_utc() -> None:
    d = Driver(make_spec([pause("10s")]), now=datetime(2025, 1, 1, 12, 0, 0))
    d.step("s1")
    d.step("c1")
    assert d.rollout.started_at == "2025-01-01T12:00:00Z"


def test_decide_is_pure() -> None:
    spec = make_spec()
    revisions, rollout = RevisionStatus(stable="s1"), RolloutStatus()
    obs = Observations(desired_revision="c1", intents={"promote": "step"})
    one = decide(spec, revisions, rollout, obs, T0)
    two = decide(spec, revisions, rollout, obs, T0)
    assert one == two
    assert rollout == RolloutStatus() and revisions == RevisionStatus(stable="s1")
    with pytest.raises(FrozenInstanceError):
        one.promoted = True  # type: ignore[misc]


def test_waiting_states_are_fixed_points() -> None:
    """Level-triggered: calling again with the same observations at the same time changes nothing."""
    for setup in ("waiting-pods", "paused", "timed-pause", "inconclusive-paused", "aborted", "idle"):
        d = _in_phase(setup)
        desired = {"idle": "s1"}.get(setup, "c1")
        first = d.step(desired)
        second = d.step(desired)
        assert second.rollout == first.rollout and second.revisions == first.revisions, setup
        assert second.events == [], setup


def test_status_round_trips_through_the_wire_format() -> None:
    d = started(make_spec())
    d.step("c1", ready=True, after=1)
    wire = d.rollout.to_wire()
    assert RolloutStatus.model_validate(wire) == d.rollout
    assert wire["stepStartedAt"].endswith("Z")


def test_intents_from_annotations() -> None:
    annotations = {
        "agentfleet.dev/promote": "full",
        "agentfleet.dev/abort": "x",
        "agentfleet.dev/other": "y",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    assert intents_from_annotations(annotations) == {"promote": "full", "abort": "x"}
    assert intents_from_annotations(None) == {}


def test_time_going_backwards_does_not_abort_or_advance() -> None:
    d = started(make_spec([pause("60s"), set_weight(10)], deadline=60))
    decision = d.step("c1", after=-30)
    assert decision.rollout.phase == "Paused" and decision.rollout.step == 0
    assert decision.requeue_after == pytest.approx(90)
    assert timedelta(seconds=decision.requeue_after or 0) > timedelta(0)
