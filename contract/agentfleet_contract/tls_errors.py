"""Telling a refused certificate from any other connection failure, for both sides.

The operator (MCP discovery, token fetches) and the runtime (model and tool calls) each report "the
server's certificate is not trusted: set caBundleSecretRef" instead of a bare connect error. HTTP
clients (httpx, httpx2, the MCP SDK inside exception groups) wrap the ssl module's error, so the reason
is found by walking the cause chain; the standard library only, like the rest of this package.
"""

from __future__ import annotations

import ssl


def untrusted_certificate(exc: BaseException) -> str | None:
    """Why the peer's certificate was refused, when that is what an HTTP client's error comes from,
    e.g. "unable to get local issuer certificate": a private CA nobody configured. None for every
    other failure. Retrying cannot help."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or current.reason or "certificate verify failed"
        current = current.__cause__ or current.__context__
    return None
