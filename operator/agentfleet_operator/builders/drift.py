"""Does a live object already carry everything we want? Comparing locally lets a no-op reconcile
issue no write request at all (a server-side apply of identical content is still a request)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def _quantity(value: Any) -> Decimal | None:
    """The API server canonicalizes quantities (0.5 → 500m); compare their values instead."""
    text = str(value)
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            try:
                return Decimal(text[: -len(suffix)]) * Decimal(_SUFFIXES[suffix])
            except InvalidOperation:
                return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _equal_scalars(want: Any, have: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have  # True == 1 in Python, not in Kubernetes
    if want == have:
        return True
    if isinstance(want, (str, int, float)) and isinstance(have, (str, int, float)):
        a, b = _quantity(want), _quantity(have)
        return a is not None and a == b
    return False


def contains(live: Any, want: Any) -> bool:
    """True when every field of `want` is present in `live` with the same value. Fields the server
    or other controllers add (defaults, HPA replicas, annotations of tools) are not our business."""
    if isinstance(want, dict):
        if not isinstance(live, dict):
            return False
        return all(key in live and contains(live[key], value) for key, value in want.items())
    if isinstance(want, list):
        if not isinstance(live, list) or len(live) != len(want):
            return False
        return all(contains(have, item) for have, item in zip(live, want, strict=True))
    return _equal_scalars(want, live)


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return True
    # stringData is write-only: the server stores it base64-encoded under data.
    wanted = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "stringData")}
    return not contains(live, wanted)
