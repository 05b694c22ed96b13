"""Replace personal data with `[REDACTED:<kind>]` before anything is stored or logged.

The patterns favour false positives (a long order number may read as a phone number) over
leaks. Substitution repeats until nothing matches, so the output never matches a pattern:
the marker text has no digits and no `@`, and every match holds one, so each pass strictly
removes some and the loop ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

PATTERNS: dict[str, re.Pattern[str]] = {
    # Local part: every character RFC 5322 allows unquoted but `/`, which addresses in use do not
    # have and paths do: /v1/sessions/jane@example.com keeps its route, only the address goes. An
    # address whose local part ends in `/` (legal, if odd) still loses everything from the `@` on.
    "email": re.compile(
        r"(?:[A-Za-z0-9.!#$%&'*+=?^_`{|}~\-]+|(?<=/))@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
    ),
    # Country code, check digits, then 11-30 alphanumerics, optionally in groups split by spaces.
    "iban": re.compile(r"\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE),
    # 13-19 digits, optionally grouped with spaces or dashes (no Luhn check: leaks cost more).
    "creditCard": re.compile(r"(?<!\d)\d(?:[ \-]?\d){12,18}(?!\d)"),
    # Optional +country, then at least 7 digits with common separators.
    "phone": re.compile(r"(?<!\w)(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d(?:[ .\-]?\d){6,14}(?!\d)"),
}
# Specific before general: a card number or an IBAN would otherwise be labelled a phone number.
ORDER = ("email", "iban", "creditCard", "phone")


class Redactor:
    def __init__(self, kinds: Iterable[str]) -> None:
        wanted = set(kinds)
        unknown = wanted - set(PATTERNS)
        if unknown:
            raise ValueError(f"unknown redaction patterns: {', '.join(sorted(unknown))}")
        self.kinds = [kind for kind in ORDER if kind in wanted]
        self._patterns = [(kind, PATTERNS[kind]) for kind in self.kinds]

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def redact(self, text: str) -> str:
        if not self._patterns:
            return text
        while True:
            changed = False
            for kind, pattern in self._patterns:
                text, count = pattern.subn(f"[REDACTED:{kind}]", text)
                changed = changed or count > 0
            if not changed:
                return text

    def redact_value(self, value: Any) -> Any:
        """Redact every string inside a JSON-like value (dict keys included)."""
        if not self._patterns:
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(k)): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value
