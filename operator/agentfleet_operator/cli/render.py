"""Text the plugin prints, as pure functions of API objects (plain dicts as the API server returns them).

Nothing here does I/O or reads the clock: `now` is passed in so the output is testable. Every field is
read defensively because status is written by whichever operator version runs (or by hand), and a
status viewer that crashes on an unexpected status is useless exactly when it is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from agentfleet_operator.builders.agent_children import ANNOTATION_IMAGE
from agentfleet_operator.builders.names import LABEL_REVISION, config_map
from agentfleet_operator.rollout.durations import as_utc, parse_time
from agentfleet_operator.rollout.state_machine import INTENT_ANNOTATIONS

Obj = Mapping[str, Any]

# Rollout phases in which a canary is on its way; promote and abort act only then.
ACTIVE_PHASES = ("Progressing", "Paused", "Promoting")
_INDENT = "  "


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    """obj[path[0]][path[1]]…, or default when any level is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, Mapping) or key not in obj:
            return default
        obj = obj[key]
    return default if obj is None else obj


def _text(value: Any, empty: str = "-") -> str:
    return empty if value is None or value == "" else str(value)


def age(stamp: str | None, now: datetime | None) -> str:
    """Compact age like kubectl's (45s, 3m10s, 2h5m, 4d); empty without a clock or a readable time."""
    moment = parse_time(stamp)
    if moment is None or now is None:
        return ""
    seconds = max(0, int((as_utc(now) - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds}s" if minutes < 10 and seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{hours // 24}d"


def _when(stamp: str | None, now: datetime | None) -> str:
    if not stamp:
        return "-"
    ago = age(stamp, now)
    return f"{stamp} ({ago} ago)" if ago else stamp


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = _INDENT) -> list[str]:
    """Left-aligned columns two spaces apart, kubectl style; the last column is not padded."""
    rows = [list(map(str, row)) for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + row[-1:]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def describe_step(step: Obj) -> str:
    """One canary step as the user wrote it: `setWeight 10`, `pause 60s`, `pause (until promoted)`, `analysis`."""
    if step.get("setWeight") is not None:
        return f"setWeight {step['setWeight']}"
    if "pause" in step:
        duration = _get(step, "pause", "duration")
        return f"pause {duration}" if duration else "pause (until promoted)"
    if "analysis" in step:
        return "analysis"
    return "(unknown step)"


def step_weights(steps: Sequence[Obj]) -> list[int]:
    """The canary weight in effect while each step runs: the last setWeight at or before it."""
    weights, weight = [], 0
    for step in steps:
        if isinstance(step.get("setWeight"), int):
            weight = step["setWeight"]
        weights.append(weight)
    return weights


def pending_intents(agent: Obj) -> dict[str, str]:
    """Intent annotations whose value the operator has not recorded as handled yet (keyed by annotation)."""
    annotations = _get(agent, "metadata", "annotations", default={})
    handled = _get(agent, "status", "rollout", "handledIntents", default={})
    return {
        annotation: annotations[annotation]
        for kind, annotation in INTENT_ANNOTATIONS.items()
        if annotation in annotations and handled.get(kind) != annotations[annotation]
    }


def _condition(status: Obj, type_: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def _condition_line(cond: Obj | None) -> str:
    if cond is None:
        return "Unknown (no Ready condition reported yet)"
    line = _text(cond.get("status"), "Unknown")
    if cond.get("reason"):
        line += f" ({cond['reason']})"
    if cond.get("message"):
        line += f": {cond['message']}"
    return line


def _replicas_line(spec: Obj, status: Obj) -> str:
    ready = status.get("ready") or f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}"
    autoscaling = spec.get("autoscaling")
    if isinstance(autoscaling, Mapping):
        lo, hi = autoscaling.get("minReplicas", 1), autoscaling.get("maxReplicas", "?")
        return f"{ready} ready (autoscaling {lo}-{hi})"
    return f"{ready} ready (spec.replicas {spec.get('replicas', 1)})"


def _steps_table(steps: Sequence[Obj], current: int | None) -> list[str]:
    weights = step_weights(steps)
    rows = []
    for index, step in enumerate(steps):
        marker = ">" if index == current else " "
        rows.append([marker, str(index + 1), describe_step(step), f"{weights[index]}%"])
    return table(["", "STEP", "ACTION", "WEIGHT"], rows, indent=_INDENT * 2)


def _analysis_table(measurements: Sequence[Obj], now: datetime | None) -> list[str]:
    rows = []
    for m in measurements:
        stamp = str(m.get("time", ""))
        ago = age(stamp, now)
        rows.append(
            [
                f"{stamp} ({ago} ago)" if ago else _text(stamp),
                _text(m.get("metric")),
                _text(m.get("value")),
                _text(m.get("stableValue")),
                _text(m.get("threshold")),
                _text(m.get("verdict")),
                _text(m.get("message"), ""),
            ]
        )
    return table(["TIME", "METRIC", "VALUE", "STABLE", "THRESHOLD", "VERDICT", "MESSAGE"], rows)


def _hint(name: str, rollout_phase: str, canary: str) -> str:
    if rollout_phase == "Paused":
        return (
            f"continue with `kubectl agentfleet promote {name}` (one step) or `--full`; "
            f"roll back with `kubectl agentfleet abort {name}`"
        )
    if rollout_phase in ACTIVE_PHASES and canary:
        return f"skip ahead with `kubectl agentfleet promote {name}`, roll back with `kubectl agentfleet abort {name}`"
    if rollout_phase == "Aborted":
        return f"try the same revision again with `kubectl agentfleet retry {name}`, or change the spec"
    return ""


def render_status(agent: Obj, now: datetime | None = None) -> str:
    """The `status` command: health, revisions, the canary's steps with the current one marked, analysis."""
    meta = agent.get("metadata") or {}
    spec = agent.get("spec") or {}
    status = agent.get("status") or {}
    name = str(meta.get("name", "?"))
    rollout_spec = spec.get("rollout") or {}
    strategy = rollout_spec.get("strategy") or "RollingUpdate"
    steps = _get(rollout_spec, "canary", "steps", default=[]) if strategy == "Canary" else []

    lines = [f"Agent:        {meta.get('namespace', '?')}/{name}"]
    if not status:
        lines.append("Status:       not reported yet: the operator has not reconciled this Agent (is it running?)")
    else:
        lines += [
            f"Phase:        {_text(status.get('phase'))}",
            f"Ready:        {_condition_line(_condition(status, 'Ready'))}",
            f"Replicas:     {_replicas_line(spec, status)}",
        ]
        if status.get("endpoint"):
            lines.append(f"Endpoint:     {status['endpoint']}")
        observed, generation = status.get("observedGeneration"), meta.get("generation")
        if observed is not None and generation is not None and observed != generation:
            lines.append(
                f"Observed:     generation {observed}, spec is at {generation}: the operator has not caught up"
            )
    revision = status.get("revision") or {}
    canary = str(revision.get("canary") or "")
    lines.append(f"Stable:       {_text(revision.get('stable'))}")
    lines.append(f"Canary:       {_text(canary, '(none)')}")

    rollout = status.get("rollout") or {}
    phase = str(rollout.get("phase") or "Idle")
    lines.append("")
    if strategy != "Canary":
        lines.append(f"Rollout:      {strategy}: new revisions replace the pods in place (no canary steps)")
        if rollout.get("message"):
            lines.append(f"{_INDENT}Message:    {rollout['message']}")
    else:
        lines.append(f"Rollout:      Canary, phase {phase}")
        step = rollout.get("step")
        # The marker only means something while a canary walks its steps (or where an abort stopped it).
        current = step if isinstance(step, int) and (phase in ACTIVE_PHASES or phase == "Aborted") else None
        if current is not None and 0 <= current < len(steps):
            where = f"{current + 1}/{len(steps)} {describe_step(steps[current])}"
            if phase == "Aborted":
                lines.append(f"{_INDENT}Stopped at: step {where}")
            else:
                lines.append(f"{_INDENT}Step:       {where}, started {_when(rollout.get('stepStartedAt'), now)}")
        actual = rollout.get("actualWeight")
        lines.append(
            f"{_INDENT}Weight:     target {rollout.get('weight', 0)}%, actual "
            + ("-" if actual is None else f"{actual}%")
        )
        if rollout.get("message"):
            lines.append(f"{_INDENT}Message:    {rollout['message']}")
        if rollout.get("abortedRevision"):
            lines.append(f"{_INDENT}Aborted:    revision {rollout['abortedRevision']} (rolled back)")
        analysis_cfg = _get(rollout_spec, "canary", "analysis", default={})
        if rollout.get("failures") or rollout.get("inconclusive"):
            lines.append(
                f"{_INDENT}Verdicts:   {rollout.get('failures', 0)} failed (abort at "
                f"{analysis_cfg.get('failureLimit', 2)}), {rollout.get('inconclusive', 0)} inconclusive in a row "
                f"(pause at {analysis_cfg.get('inconclusiveLimit', 3)})"
            )
        if steps:
            lines.append(f"{_INDENT}Steps:")
            lines += _steps_table(steps, current)
        else:
            lines.append(f"{_INDENT}Steps:      (none in spec.rollout.canary.steps)")
        hint = _hint(name, phase, canary)
        if hint:
            lines.append(f"{_INDENT}Hint:       {hint}")

    pending = pending_intents(agent)
    if pending:
        lines.append("")
        lines.append("Pending intents (set, not acted upon by the operator yet):")
        lines += [f"{_INDENT}{key}={value}" for key, value in pending.items()]

    measurements = rollout.get("analysis") or []
    if measurements:
        lines.append("")
        lines.append("Analysis (oldest first):")
        lines += _analysis_table(measurements, now)

    conditions = status.get("conditions") or []
    if conditions:
        lines.append("")
        lines.append("Conditions:")
        lines += table(
            ["TYPE", "STATUS", "REASON", "MESSAGE"],
            [
                [_text(c.get("type")), _text(c.get("status")), _text(c.get("reason")), _text(c.get("message"), "")]
                for c in conditions
            ],
        )
    return "\n".join(lines) + "\n"


def render_history(agent: Obj, config_maps: Sequence[Obj], now: datetime | None = None) -> str:
    """The `history` command: revisions newest first, which track runs each, and whether its revision
    ConfigMap (needed to roll back to it as is) still exists."""
    meta = agent.get("metadata") or {}
    name = str(meta.get("name", "?"))
    status = agent.get("status") or {}
    stable = str(_get(status, "revision", "stable", default=""))
    canary = str(_get(status, "revision", "canary", default=""))
    aborted = str(_get(status, "rollout", "abortedRevision", default=""))

    by_revision: dict[str, Obj] = {}
    for cm in config_maps:
        cm_meta = cm.get("metadata") or {}
        revision = (cm_meta.get("labels") or {}).get(LABEL_REVISION)
        if revision:
            by_revision[str(revision)] = cm

    revisions: list[str] = []
    # The live revisions lead even if an (older) operator left them out of revisionHistory.
    for revision in [canary, stable, *(status.get("revisionHistory") or [])]:
        if revision and revision not in revisions:
            revisions.append(str(revision))

    lines = [f"Revisions of Agent {meta.get('namespace', '?')}/{name} (newest first):"]
    if not revisions:
        lines.append(f"{_INDENT}none recorded yet (status.revisionHistory is empty)")
    else:
        rows = []
        for revision in revisions:
            role = "canary" if revision == canary else "stable" if revision == stable else ""
            if revision == aborted:
                role = "rolled back"
            cm = by_revision.get(revision)
            if cm is None:
                rows.append([revision, _text(role), config_map(name, revision), "no (deleted)", "-", "-"])
                continue
            cm_meta = cm.get("metadata") or {}
            image = (cm_meta.get("annotations") or {}).get(ANNOTATION_IMAGE)
            rows.append(
                [
                    revision,
                    _text(role),
                    str(cm_meta.get("name", "")),
                    "yes",
                    _when(cm_meta.get("creationTimestamp"), now),
                    _text(image),
                ]
            )
        lines += table(["REVISION", "ROLE", "CONFIGMAP", "EXISTS", "CREATED", "IMAGE"], rows)

    extra = sorted(
        (r for r in by_revision if r not in revisions),
        key=lambda r: str(_get(by_revision[r], "metadata", "creationTimestamp", default="")),
        reverse=True,
    )
    if extra:
        lines.append("")
        lines.append("Revision ConfigMaps not listed in status.revisionHistory:")
        lines += [f"{_INDENT}{_get(by_revision[r], 'metadata', 'name', default=r)}" for r in extra]
    return "\n".join(lines) + "\n"
