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


def merge_conditions(previous: list[dict[str, Any]], new: list[Cond], generation: int | None,
                     now: str) -> list[dict[str, Any]]:
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


def same_status(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether writing `new` would change anything a reader can see."""
    return old is not None and all(old.get(key) == value for key, value in new.items())
