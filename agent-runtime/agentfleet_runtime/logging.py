"""Structured JSON logs in the format shared with the operator (agentfleet_contract.json_logs),
with the request id and redaction applied.

Redaction is for content: the message, tracebacks and every field a log call passes (the request
path with its session id, a failure's reason), so PII a caller sent cannot reach the log pipeline
even through a library's log line. It never touches what logs are correlated by: the request id (a
caller's `X-Request-ID: 1234567890` is an id, not a phone number), the agent's identity and the
IDENTIFIER_FIELDS the runtime's own log calls pass. A field not listed there is redacted, so a new
field is safe before anyone thinks about it.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Mapping

from agentfleet_contract.json_logs import JsonLogFormatter

from .memory.redaction import Redactor

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# `extra=` fields of the runtime's own log lines that name things rather than carry a caller's text:
# configuration names (tool, connector), metric labels (outcome, code), HTTP methods, library names.
IDENTIFIER_FIELDS = (
    "tool",
    "tools",
    "connector",
    "outcome",
    "code",
    "method",
    "status",
    "attempt",
    "duration_ms",
    "provider",
    "state",
    "transport",
    "protocol",
    "error",
    "keys",
    "serial",
    "previous_serial",
    "expires",
)


def _request_context() -> Mapping[str, str | None]:
    return {"request_id": request_id_var.get()}


class JsonFormatter(JsonLogFormatter):
    """The shared format with the runtime's additions: the request id of the request being served,
    the agent's identity on every line, and PII redaction."""

    def __init__(self, redactor: Redactor | None = None, static: dict[str, str] | None = None) -> None:
        super().__init__(
            static=static,
            context=_request_context,
            redact=(redactor or Redactor([])).redact_value,
            verbatim=IDENTIFIER_FIELDS,
        )


def configure_logging(
    level: str = "INFO", *, redactor: Redactor | None = None, static: dict[str, str] | None = None
) -> logging.Handler:
    """Route the root logger (and uvicorn's) to one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redactor, static))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Their lines carry full URLs with arguments; the MCP SDK's info lines carry session ids.
    for name in ("httpx", "httpcore", "httpx2", "httpcore2", "mcp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
