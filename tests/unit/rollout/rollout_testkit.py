"""Builders shared by the rollout unit tests: specs, measurements and a driver that feeds each
Decision back in as the next call's status, the way the handler will."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agentfleet_operator.api.agent import AgentSpec, AnalysisMeasurement, RevisionStatus, RolloutStatus
from agentfleet_operator.rollout.durations import format_time
from agentfleet_operator.rollout.state_machine import Decision, Observations, decide

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
PROM = "http://prometheus.monitoring:9090"


def set_weight(n: int) -> dict[str, Any]:
    return {"setWeight": n}


def pause(duration: str | None = None) -> dict[str, Any]:
    return {"pause": {"duration": duration} if duration else {}}


def analysis() -> dict[str, Any]:
    return {"analysis": {}}


def make_spec(
    steps: list[dict[str, Any]] | None = None,
    *,
    strategy: str = "Canary",
    deadline: int = 600,
    failure_limit: int = 2,
    inconclusive_limit: int = 3,
    interval: str = "30s",
    with_analysis: bool = True,
) -> AgentSpec:
    canary: dict[str, Any] = {
        "steps": steps if steps is not None else [set_weight(10), pause("60s"), analysis(), set_weight(50)],
        "progressDeadlineSeconds": deadline,
    }
    if with_analysis:
        canary["analysis"] = {
            "prometheusURL": PROM,
            "interval": interval,
            "failureLimit": failure_limit,
            "inconclusiveLimit": inconclusive_limit,
        }
    return AgentSpec.model_validate(
        {
            "model": {"provider": "rules", "name": "rules"},
            "prompt": {"system": "be helpful"},
            "rollout": {"strategy": strategy, "canary": canary},
        }
    )


def plain_spec() -> AgentSpec:
    return AgentSpec.model_validate({"model": {"provider": "rules", "name": "rules"}, "prompt": {"system": "x"}})


def measurement(verdict: str, at: datetime = T0, metric: str = "errorRatio", message: str = "") -> AnalysisMeasurement:
    return AnalysisMeasurement(
        time=format_time(at),
        metric=metric,
        query="q",
        value="0.01",
        threshold="0.05",
        verdict=verdict,  # type: ignore[arg-type]
        message=message or f"{verdict.lower()} for the test",
    )


@dataclass
class Driver:
    """Feeds decide() its own output, as a handler writing status would."""

    spec: AgentSpec
    now: datetime = T0
    revisions: RevisionStatus = field(default_factory=RevisionStatus)
    rollout: RolloutStatus = field(default_factory=RolloutStatus)
    intents: dict[str, str] = field(default_factory=dict)
    last: Decision | None = None

    def step(
        self,
        desired: str,
        *,
        ready: bool = False,
        measurements: list[AnalysisMeasurement] | None = None,
        after: float = 0.0,
        **intents: str,
    ) -> Decision:
        self.now += timedelta(seconds=after)
        self.intents.update(intents)
        obs = Observations(
            desired_revision=desired,
            canary_ready=ready,
            intents=dict(self.intents),
            measurements=measurements,
        )
        decision = decide(self.spec, self.revisions, self.rollout, obs, self.now)
        self.revisions, self.rollout, self.last = decision.revisions, decision.rollout, decision
        return decision

    def measure(self, desired: str, *verdicts: str) -> Decision:
        """Hand back measurements taken now (what the handler does when run_analysis is set)."""
        return self.step(desired, measurements=[measurement(v, self.now) for v in verdicts])

    @property
    def phase(self) -> str:
        return self.rollout.phase

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in (self.last.events if self.last else [])]


def started(spec: AgentSpec, stable: str = "s1", canary: str = "c1") -> Driver:
    """A driver with `stable` established and a canary of `canary` just started."""
    d = Driver(spec)
    d.step(stable)
    d.step(canary)
    return d
