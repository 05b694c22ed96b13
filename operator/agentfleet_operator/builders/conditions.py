"""metav1.Condition bookkeeping: lastTransitionTime changes only when a status flips."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cond:
    type: str
    status: bool | None  # None = Unknown
    reason: str
    message: str = ""


def _status(value: bool | None) -> str:
    return "Unknown" if value is None else ("True" if value else "False")


def merge_conditions(
    previous: list[dict[str, Any]], new: list[Cond], generation: int | None, now: str
) -> list[dict[str, Any]]:
    by_type = {c.get("type"): c for c in previous or []}
    out = []
    for cond in new:
        old = by_type.get(cond.type)
        status = _status(cond.status)
        changed = old is None or old.get("status") != status
        entry: dict[str, Any] = {
            "type": cond.type,
            "status": status,
            "reason": cond.reason,
            "message": cond.message[:4096],
            "lastTransitionTime": now if changed else old.get("lastTransitionTime", now),
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        out.append(entry)
    return out


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that makes the stored status show `new`; empty when nothing would change.

    Top-level fields absent from `new` are left alone (an early failure writes only phase and conditions
    and keeps the last known endpoint and revision). A nested object in `new` is its complete value: its
    fields we no longer set are sent as null, because a merge patch merges nested objects and the server
    would otherwise keep them, and every later reconcile would see a difference and write again."""
    return _merge_patch(old or {}, new, drop_absent=False)


def _merge_patch(have: dict[str, Any], want: dict[str, Any], *, drop_absent: bool) -> dict[str, Any]:
    patch: dict[str, Any] = {key: None for key in have if key not in want} if drop_absent else {}
    for key, value in want.items():
        current = have.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            nested = _merge_patch(current, value, drop_absent=True)
            if nested:
                patch[key] = nested
        elif (current != value) if key in have else (value is not None):
            patch[key] = value
    return patch
