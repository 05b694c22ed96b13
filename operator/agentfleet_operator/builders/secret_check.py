"""Is a referenced Secret there with the keys its reader needs? One rule for the Agent's references
(reconcile/resolve.py), a Connector's credentials and a StatePolicy's password and key, so the three
report a missing Secret or key with the same reasons and the same words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..api import reasons


def secret_problem(
    found: Mapping[str, Any] | None,
    namespace: str,
    secret: str,
    keys: Iterable[str],
    what: str | None = None,
    needs: str = "",
) -> tuple[str, str] | None:
    """(reason, message) when the Secret or one of `keys` is missing; None when it has them all.

    found: the Store's record of the Secret (its key names, never its values), None when absent.
    what: whose Secret it is, named in the message ("model credentials"); needs: why these keys."""
    label = f"Secret {secret} ({what})" if what else f"Secret {secret}"
    if found is None:
        return reasons.SECRET_NOT_FOUND, f"{label} not found in namespace {namespace}"
    missing = [key for key in keys if key not in found["keys"]]
    if missing:
        return reasons.SECRET_KEY_MISSING, f"{label} has no key {', '.join(missing)}" + (f" ({needs})" if needs else "")
    return None
