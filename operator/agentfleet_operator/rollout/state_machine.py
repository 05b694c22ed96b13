"""The canary rollout as a pure state machine.

decide() takes what the operator knows now (spec, the status it wrote last time, what it observed in
the cluster, the time) and returns the next status plus what the handler should do. It does no I/O:
the handler reads Deployments and annotations, runs the analysis when asked, applies the revisions
and writes the status. Calling it twice with the same input gives the same output, which keeps the
reconcile level-triggered and idempotent.

How a handler drives it:

    d = decide(spec, status.revision, status.rollout, obs, now)
    if d.run_analysis:
        ms = await provider.measure(..., canary_revision=d.revisions.canary, now=now)
        d = decide(spec, d.revisions, d.rollout, replace(obs, measurements=ms), now)
    apply d.revisions (stable Deployment, canary Deployment sized by d.rollout.weight), emit d.events,
    write d.revisions and d.rollout to status, requeue after d.requeue_after.

Lessons from Argo Rollouts and Flagger built in: no data is never a pass (inconclusive pauses for a
human), a canary stuck on pods that never get ready is aborted by the progress deadline, and the
stable track is never touched until promotion, so an abort is instant.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agentfleet_operator.api import reasons
from agentfleet_operator.api.agent import (
    AgentSpec,
    AnalysisMeasurement,
    CanarySpec,
    CanaryStep,
    RevisionStatus,
    RolloutStatus,
)
from agentfleet_operator.api.identity import INTENT_ABORT, INTENT_KINDS, INTENT_PROMOTE, INTENT_RETRY
from agentfleet_operator.api.identity import INTENT_ANNOTATIONS as INTENT_ANNOTATIONS

from .durations import as_utc, format_time, parse_duration, parse_time

# The intents are the API's (api/identity.py); the kubectl plugin reads them from here too.
PROMOTE, ABORT, RETRY = INTENT_PROMOTE, INTENT_ABORT, INTENT_RETRY

# While a setWeight step waits for canary pods, the machine asks to be called again this often so it
# notices readiness even when the handler does not watch the canary Deployment.
READINESS_POLL_SECONDS = 10.0
# RolloutStatus.analysis holds at most this many measurements (the CRD's maxItems).
MAX_MEASUREMENTS = 20
_MAX_WHY = 400

Event = tuple[str, str, str]  # (Normal|Warning, CamelCaseReason, message)


@dataclass(frozen=True)
class Observations:
    """What the handler saw in the cluster just now."""

    desired_revision: str
    """Hash of everything the spec asks the pods to run now."""
    canary_ready: bool = False
    """Canary pods of status.revision.canary are available at the count for the *given* status weight
    (replicas_for_weight(stable, rollout.weight)); False when there is no canary."""
    intents: Mapping[str, str] = field(default_factory=dict)
    """Current values of the intent annotations keyed promote/abort/retry (intents_from_annotations)."""
    measurements: list[AnalysisMeasurement] | None = None
    """Results of the analysis the previous Decision asked for; None when none was run."""


@dataclass(frozen=True)
class Decision:
    revisions: RevisionStatus
    rollout: RolloutStatus
    run_analysis: bool = False
    """Query the analysis provider now and call decide() again with the measurements."""
    requeue_after: float | None = None
    """Seconds until the machine wants to be called again (pause end, next measurement, deadline)."""
    events: list[Event] = field(default_factory=list)
    rolled_back: bool = False
    promoted: bool = False
    abort_reason: str = ""
    """CamelCase cause when rolled_back: AbortRequested, AnalysisFailed or ProgressDeadlineExceeded."""


def intents_from_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """The intent annotations of an Agent, keyed promote/abort/retry as decide() expects."""
    annotations = annotations or {}
    return {kind: annotations[key] for kind, key in INTENT_ANNOTATIONS.items() if key in annotations}


def decide(
    spec: AgentSpec,
    revisions: RevisionStatus,
    rollout: RolloutStatus,
    obs: Observations,
    now: datetime,
) -> Decision:
    """The next revisions and rollout status, and what the handler should do about them."""
    if not obs.desired_revision:
        raise ValueError("Observations.desired_revision must not be empty")
    machine = _Machine(spec, revisions, rollout, obs, as_utc(now))
    machine.run()
    return machine.decision()


class _Outcome(enum.Enum):
    ADVANCE = "advance"
    WAIT = "wait"


def _canary_spec(spec: AgentSpec) -> CanarySpec | None:
    if spec.rollout is None or spec.rollout.strategy != "Canary":
        return None
    return spec.rollout.canary


def _step_kind(step: CanaryStep) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause"
    return "analysis"


def _shorten(text: str, limit: int = _MAX_WHY) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _promote_kind(value: str) -> str | None:
    # "step" / "full", optionally "step:<anything>" so the same intent can be given again with a new value
    # (the operator acts once per distinct value).
    kind = value.split(":", 1)[0].strip().lower()
    return kind if kind in ("step", "full") else None


class _Machine:
    """One evaluation of decide(); mutable working copies, thrown away afterwards."""

    def __init__(
        self,
        spec: AgentSpec,
        revisions: RevisionStatus,
        rollout: RolloutStatus,
        obs: Observations,
        now: datetime,
    ) -> None:
        self.spec = spec
        self.obs = obs
        self.now = now
        self.stable = revisions.stable
        self.canary = revisions.canary
        self.r = rollout.model_copy(deep=True)
        self.input_weight = rollout.weight
        self.input_step = rollout.step
        self.events: list[Event] = []
        self.run_analysis = False
        self.requeue_after: float | None = None
        self.rolled_back = False
        self.promoted = False
        self.abort_reason = ""
        # Observations describe the canary as it was; once a canary (re)starts in this call they are stale.
        self.started = False
        self.measurements_used = False

    # ----------------------------------------------------------------- top level

    def run(self) -> None:
        desired = self.obs.desired_revision
        pending = self._take_intents()
        cfg = _canary_spec(self.spec)

        if cfg is None or not self.stable:
            self._replace_in_place(desired, first=not self.stable)
            self._ignore_all(pending, "no canary in progress")
            return

        if desired == self.stable:
            self._back_to_stable()
            self._ignore_all(pending, "no canary in progress")
            return

        if self.r.phase == "Aborted" and self.r.aborted_revision and desired == self.r.aborted_revision:
            self.canary, self.r.weight = "", 0
            retry = pending.pop(RETRY, None)
            if retry is not None:
                self._ignore_all(pending, "a retry arrived at the same time")
                self.events.append(("Normal", reasons.RETRY_REQUESTED, f"{INTENT_ANNOTATIONS[RETRY]}={retry}"))
                self._start(desired, reasons.CANARY_RETRIED, f"retrying the canary of revision {desired} from step 1")
                self._walk(cfg)
            else:
                self._ignore_all(pending, f"revision {desired} was rolled back; use retry or change the spec")
            return

        if desired != self.canary:
            superseded = self.canary
            if PROMOTE not in pending:
                self._note_leftover_promote(desired)
            self._ignore_all(pending, f"it arrived together with the new revision {desired}")
            if superseded:
                self._start(desired, reasons.CANARY_SUPERSEDED, f"canary {superseded} superseded by revision {desired}")
            else:
                self._start(
                    desired, reasons.CANARY_STARTED, f"canary of revision {desired} started (stable {self.stable})"
                )
            self._walk(cfg)
            return

        # A canary of the desired revision is under way.
        if self.r.phase in ("Idle", "Aborted"):  # inconsistent status (edited by hand): carry on walking
            self.r.phase = "Progressing"
            self.r.aborted_revision = ""
        if cfg.steps and self.r.step >= len(cfg.steps):
            # The steps are not part of the revision, so they can shrink under a running canary: redo the
            # last one rather than skip whatever was cut (it may have been an analysis).
            self.r.step = len(cfg.steps) - 1
        if self._act_on_intents(pending, cfg):
            return
        self._walk(cfg)

    def decision(self) -> Decision:
        # Re-validate so a bug here surfaces as an exception in tests, not as a status the API rejects.
        rollout = RolloutStatus.model_validate(self.r.model_dump())
        return Decision(
            revisions=RevisionStatus(stable=self.stable, canary=self.canary),
            rollout=rollout,
            run_analysis=self.run_analysis,
            requeue_after=None if self.requeue_after is None else max(0.0, self.requeue_after),
            events=list(self.events),
            rolled_back=self.rolled_back,
            promoted=self.promoted,
            abort_reason=self.abort_reason,
        )

    # ----------------------------------------------------------------- intents

    def _take_intents(self) -> dict[str, str]:
        """Intents with a value not acted upon yet; every present value is recorded as handled now.

        A removed annotation forgets its record: removing it and writing the same value again is a
        change a person made on purpose, and is acted on like any other."""
        pending: dict[str, str] = {}
        for kind in INTENT_KINDS:
            value = self.obs.intents.get(kind)
            if value is None:
                self.r.handled_intents.pop(kind, None)
                continue
            if self.r.handled_intents.get(kind) == value:
                continue
            pending[kind] = value
            self.r.handled_intents[kind] = value
        return pending

    def _ignore_all(self, pending: dict[str, str], why: str) -> None:
        for kind, value in pending.items():
            self.events.append(("Normal", reasons.INTENT_IGNORED, f"{INTENT_ANNOTATIONS[kind]}={value} ignored: {why}"))
        pending.clear()

    def _note_leftover_promote(self, revision: str) -> None:
        """A promote annotation left from an earlier canary is not acted on again, and writing the same
        value again changes nothing the operator could see; say so once, with a value that will work."""
        value = self.obs.intents.get(PROMOTE)
        if value is None:
            return
        self.events.append(
            (
                "Normal",
                reasons.INTENT_IGNORED,
                (
                    f"{INTENT_ANNOTATIONS[PROMOTE]}={value} was acted on before and does not apply to canary "
                    f"{revision}; to promote it set "
                    f"{INTENT_ANNOTATIONS[PROMOTE]}={self._fresh_intent(f'full:{revision}')}"
                ),
            )
        )

    def _fresh_intent(self, base: str) -> str:
        """A promote value certain to be acted on: different from what the annotation holds now (an
        unchanged annotation is no event at all) and from the value last acted on."""
        taken = {self.obs.intents.get(PROMOTE), self.r.handled_intents.get(PROMOTE)}
        value, n = base, 2
        while value in taken:
            value, n = f"{base}.{n}", n + 1
        return value

    def _promote_hint(self) -> str:
        annotation = INTENT_ANNOTATIONS[PROMOTE]
        step = self._fresh_intent(f"step:{self.canary}-{self.r.step + 1}")
        return (
            f"set {annotation}={step} to continue, {annotation}={self._fresh_intent(f'full:{self.canary}')} to finish"
        )

    def _act_on_intents(self, pending: dict[str, str], cfg: CanarySpec) -> bool:
        """Act on at most one intent while a canary runs; True when the walk is over for this call.

        Abort wins over everything arriving with it: when the order is unknown, the safe reading is
        that the person wants the canary gone.
        """
        abort = pending.pop(ABORT, None)
        if abort is not None:
            self._ignore_all(pending, "an abort arrived at the same time")
            self.events.append(("Normal", reasons.ABORT_REQUESTED, f"{INTENT_ANNOTATIONS[ABORT]}={abort}"))
            self._abort(reasons.ABORT_REQUESTED, f"aborted by {INTENT_ANNOTATIONS[ABORT]}={abort}")
            return True
        retry = pending.pop(RETRY, None)
        if retry is not None:
            self._ignore_all({RETRY: retry}, "retry applies only to an aborted rollout")
        promote = pending.pop(PROMOTE, None)
        if promote is None:
            return False
        kind = _promote_kind(promote)
        annotation = f"{INTENT_ANNOTATIONS[PROMOTE]}={promote}"
        if kind is None:
            self.events.append(("Warning", reasons.INTENT_IGNORED, f"{annotation} ignored: expected step or full"))
            return False
        if kind == "full":
            self.events.append(("Normal", reasons.PROMOTE_REQUESTED, f"{annotation}: promoting now, skipping the rest"))
            self._promote()
            return True
        if not cfg.steps:
            self._promote()
            return True
        current = cfg.steps[self.r.step]
        self.events.append(
            (
                "Normal",
                reasons.PROMOTE_REQUESTED,
                f"{annotation}: {self._label(cfg)} ({_step_kind(current)}) skipped",
            )
        )
        if current.set_weight is not None:
            self.r.weight = current.set_weight
        self._advance()
        self._walk(cfg)
        return True

    # ----------------------------------------------------------------- transitions

    def _replace_in_place(self, desired: str, first: bool) -> None:
        """RollingUpdate (or the very first revision): the stable track simply runs what is asked."""
        if self.canary:
            self.events.append(
                (
                    "Normal",
                    reasons.CANARY_CANCELLED,
                    f"canary {self.canary} dropped: the rollout strategy is not Canary",
                )
            )
        if not first and desired != self.stable:
            self.events.append(
                ("Normal", reasons.ROLLING_UPDATE, f"replacing revision {self.stable} with {desired} in place")
            )
            self.r.message = f"rolling update to revision {desired}"
        self.stable, self.canary = desired, ""
        self._idle()

    def _back_to_stable(self) -> None:
        """The spec asks for the stable revision again (Git reverted): drop any canary and abort mark."""
        if self.canary:
            self.events.append(
                (
                    "Normal",
                    reasons.CANARY_CANCELLED,
                    f"canary {self.canary} dropped: the spec is back at stable {self.stable}",
                )
            )
            self.r.message = f"canary {self.canary} cancelled; stable {self.stable}"
        elif self.r.phase == "Aborted" or self.r.aborted_revision:
            self.events.append(
                (
                    "Normal",
                    reasons.ABORT_CLEARED,
                    f"the spec is back at stable revision {self.stable}; rollback complete",
                )
            )
            self.r.message = f"stable {self.stable}; rolled-back revision {self.r.aborted_revision} no longer asked for"
        self.canary = ""
        self._idle()

    def _idle(self) -> None:
        self.r.phase = "Idle"
        self.r.step = 0
        self.r.weight = 0
        self.r.aborted_revision = ""
        self.r.step_started_at = None
        self.r.last_progress_at = None

    def _start(self, revision: str, reason: str, message: str) -> None:
        self.canary = revision
        stamp = format_time(self.now)
        self.r.phase = "Progressing"
        self.r.step = 0
        self.r.weight = 0
        self.r.started_at = self.r.step_started_at = self.r.last_progress_at = stamp
        self.r.failures = 0
        self.r.inconclusive = 0
        self.r.analysis = []
        self.r.aborted_revision = ""
        self.r.message = message
        self.events.append(("Normal", reason, message))
        self.started = True

    def _advance(self) -> None:
        self.r.step += 1
        self.r.step_started_at = self.r.last_progress_at = format_time(self.now)
        self.r.inconclusive = 0
        self.r.phase = "Progressing"

    def _promote(self) -> None:
        revision = self.canary
        self.events.append(("Normal", reasons.PROMOTED, f"revision {revision} promoted to stable (was {self.stable})"))
        self.stable, self.canary = revision, ""
        self._idle()
        self.r.message = f"promoted {revision}"
        self.promoted = True

    def _abort(self, cause: str, why: str) -> None:
        revision = self.canary
        self.r.message = _shorten(
            f"rolled back {revision}: {why}; stable {self.stable} keeps serving "
            f"(retry with {INTENT_ANNOTATIONS[RETRY]} or change the spec)",
            1000,
        )
        self.events.append(("Warning", reasons.ROLLED_BACK, f"canary {revision} rolled back to {self.stable}: {why}"))
        self.canary = ""
        self.r.phase = "Aborted"
        self.r.weight = 0
        self.r.aborted_revision = revision
        self.r.step_started_at = None
        self.r.last_progress_at = None
        self.rolled_back = True
        self.abort_reason = cause
        self.requeue_after = None

    # ----------------------------------------------------------------- walking the steps

    def _walk(self, cfg: CanarySpec) -> None:
        steps = cfg.steps
        if not steps:
            self._promote()
            return
        for _ in range(len(steps) + 1):
            if self.r.step >= len(steps):
                self._promote()
                return
            if self._do_step(cfg, steps[self.r.step]) is _Outcome.WAIT:
                return
            self._advance()

    def _label(self, cfg: CanarySpec) -> str:
        return f"step {self.r.step + 1}/{len(cfg.steps)}"

    def _do_step(self, cfg: CanarySpec, step: CanaryStep) -> _Outcome:
        if self.r.step_started_at is None or parse_time(self.r.step_started_at) is None:
            self.r.step_started_at = format_time(self.now)
        if parse_time(self.r.last_progress_at) is None:
            self.r.last_progress_at = format_time(self.now)
        if step.set_weight is not None:
            return self._set_weight(cfg, step.set_weight)
        if step.pause is not None:
            return self._pause(cfg, step.pause.duration)
        return self._analysis(cfg)

    def _since(self, stamp: str | None) -> timedelta:
        moment = parse_time(stamp)
        return timedelta(0) if moment is None else self.now - moment

    def _set_weight(self, cfg: CanarySpec, weight: int) -> _Outcome:
        weight = min(100, max(0, weight))
        self.r.weight = weight
        self.r.phase = "Progressing"
        # canary_ready speaks about the weight of the status we were given; a weight set in this call
        # has not been applied to the cluster yet.
        if not self.started and weight == self.input_weight and self.obs.canary_ready:
            return _Outcome.ADVANCE
        deadline = timedelta(seconds=cfg.progress_deadline_seconds)
        waited = self._since(self.r.last_progress_at)
        if waited >= deadline:
            self._deadline_exceeded(cfg, f"canary pods not available at weight {weight}%")
            return _Outcome.WAIT
        self.r.message = f"{self._label(cfg)}: canary weight {weight}%, waiting for canary pods to be available"
        self._requeue(min(READINESS_POLL_SECONDS, (deadline - waited).total_seconds()))
        return _Outcome.WAIT

    def _pause(self, cfg: CanarySpec, duration: str | None) -> _Outcome:
        if duration is None:
            self.r.phase = "Paused"
            self.r.message = f"{self._label(cfg)}: paused until promoted ({self._promote_hint()})"
            return _Outcome.WAIT
        try:
            length = parse_duration(duration)
        except ValueError:
            # The schema rejects this; if it slips through, wait for a person rather than guess.
            self.r.phase = "Paused"
            self.r.message = f"{self._label(cfg)}: pause duration {duration!r} is invalid; paused until promoted"
            return _Outcome.WAIT
        started = parse_time(self.r.step_started_at) or self.now
        until = started + length
        if self.now >= until:
            return _Outcome.ADVANCE
        self.r.phase = "Paused"
        self.r.message = f"{self._label(cfg)}: paused until {format_time(until)}"
        self._requeue((until - self.now).total_seconds())
        return _Outcome.WAIT

    def _analysis(self, cfg: CanarySpec) -> _Outcome:
        settings = cfg.analysis
        if settings is None:
            self.r.phase = "Paused"
            self.r.message = (
                f"{self._label(cfg)}: analysis step but spec.rollout.canary.analysis is missing; promote or abort"
            )
            return _Outcome.WAIT
        try:
            interval = parse_duration(settings.interval)
        except ValueError:
            self.r.phase = "Paused"
            self.r.message = f"{self._label(cfg)}: analysis interval {settings.interval!r} is invalid; promote or abort"
            return _Outcome.WAIT

        if self.r.inconclusive >= settings.inconclusive_limit:
            # Waiting for a person after too many inconclusive measurements: no deadline, no more queries,
            # and a late measurement does not quietly resume it.
            self.r.phase = "Paused"
            return _Outcome.WAIT

        measurements = self.obs.measurements
        # Measurements belong to the step that asked for them: not to a canary started in this call, nor
        # to a second analysis step reached by passing the first one.
        if (
            measurements is not None
            and not self.started
            and not self.measurements_used
            and (self.r.step == self.input_step)
        ):
            self.measurements_used = True
            return self._judge(cfg, measurements, interval)

        # An analysis is bounded by failureLimit and inconclusiveLimit, and every measurement counts as
        # progress; the deadline here only catches measurements that never come back.
        deadline = timedelta(seconds=cfg.progress_deadline_seconds) + interval
        waited = self._since(self.r.last_progress_at)
        if waited >= deadline:
            self._deadline_exceeded(cfg, "no analysis result arrived")
            return _Outcome.WAIT

        self.r.phase = "Progressing"
        due = self._next_measurement_due(interval)
        if due <= self.now:
            self.run_analysis = True
            self.r.message = f"{self._label(cfg)}: analysis running"
            self._requeue(interval.total_seconds())
        else:
            self._requeue(min((due - self.now).total_seconds(), (deadline - waited).total_seconds()))
        return _Outcome.WAIT

    def _next_measurement_due(self, interval: timedelta) -> datetime:
        """First measurement of a step at once (the spec: "run the analysis now"), then one per interval."""
        step_start = parse_time(self.r.step_started_at) or self.now
        taken = [t for t in (parse_time(m.time) for m in self.r.analysis) if t is not None and t >= step_start]
        # Judging a measurement stamps lastProgressAt, which also covers a provider whose clock lags ours.
        judged = parse_time(self.r.last_progress_at)
        if judged is not None and judged > step_start:
            taken.append(judged)
        return max(taken) + interval if taken else self.now

    def _judge(self, cfg: CanarySpec, measurements: list[AnalysisMeasurement], interval: timedelta) -> _Outcome:
        settings = cfg.analysis
        assert settings is not None  # checked by the caller
        self.r.analysis = [*self.r.analysis, *measurements][-MAX_MEASUREMENTS:]
        self.r.last_progress_at = format_time(self.now)
        failed = [m for m in measurements if m.verdict == "Failed"]
        unsure = [m for m in measurements if m.verdict == "Inconclusive"]
        label = self._label(cfg)

        if failed:
            self.r.failures += 1
            self.r.inconclusive = 0
            why = _shorten("; ".join(f"{m.metric}: {m.message}" for m in failed))
            self.events.append(
                (
                    "Warning",
                    reasons.ANALYSIS_FAILED,
                    f"{label}: failed ({self.r.failures}/{settings.failure_limit}): {why}",
                )
            )
            if self.r.failures >= settings.failure_limit:
                self._abort(reasons.ANALYSIS_FAILED, f"analysis failed {self.r.failures} times: {why}")
                return _Outcome.WAIT
            self.r.phase = "Progressing"
            self.r.message = (
                f"{label}: analysis failed ({self.r.failures}/{settings.failure_limit}): {why}; "
                f"measuring again in {settings.interval}"
            )
            self._requeue(interval.total_seconds())
            return _Outcome.WAIT

        if unsure or not measurements:
            # No data, too few requests, NaN or an unreachable Prometheus: never a pass.
            why = _shorten(
                "; ".join(f"{m.metric}: {m.message}" for m in unsure) or "the analysis returned no measurements"
            )
            self.r.inconclusive += 1
            if self.r.inconclusive >= settings.inconclusive_limit:
                self.r.phase = "Paused"
                self.r.message = (
                    f"{label}: analysis inconclusive {self.r.inconclusive} times in a row: {why}; promote or abort"
                )
                self.events.append(("Warning", reasons.ANALYSIS_INCONCLUSIVE, self.r.message))
                return _Outcome.WAIT
            self.r.phase = "Progressing"
            self.r.message = (
                f"{label}: analysis inconclusive ({self.r.inconclusive}/{settings.inconclusive_limit}): "
                f"{why}; measuring again in {settings.interval}"
            )
            self._requeue(interval.total_seconds())
            return _Outcome.WAIT

        self.r.inconclusive = 0
        self.events.append(("Normal", reasons.ANALYSIS_PASSED, f"{label}: every measurement passed"))
        return _Outcome.ADVANCE

    def _deadline_exceeded(self, cfg: CanarySpec, what: str) -> None:
        why = f"no progress for {cfg.progress_deadline_seconds}s ({what})"
        self.events.append(("Warning", reasons.PROGRESS_DEADLINE_EXCEEDED, f"canary {self.canary}: {why}"))
        self._abort(reasons.PROGRESS_DEADLINE_EXCEEDED, why)

    def _requeue(self, seconds: float) -> None:
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)
