"""Headers on every answer of a turn: the revision that answered, the session it belongs to and, for an
Agent with spec.cache, what the answer cache did (X-Agent-Cache: hit, miss or bypass)."""

from __future__ import annotations

import string
from urllib.parse import quote

_HEADER_SAFE = string.punctuation.replace("%", "") + " "


def turn_headers(revision: str, session_id: str | None, cache: str | None = None) -> dict[str, str]:
    headers = {"X-Agent-Revision": revision}
    if cache is not None:
        headers["X-Agent-Cache"] = cache
    if session_id:
        # Header values must be latin-1; an id such as "José Müller" or "山田" would otherwise make
        # the response fail with a 500 after the turn was stored. Non-ASCII ids are percent-encoded.
        headers["X-Session-ID"] = session_id if session_id.isascii() else quote(session_id, safe=_HEADER_SAFE)
    return headers
