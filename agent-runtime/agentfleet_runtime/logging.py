"""Structured JSON logs, one object per line, with the request id and redaction applied.

Redaction runs on the message and on every string field, so PII a caller sent cannot reach
the log pipeline even through a library's log line; timestamps are left alone.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from .memory.redaction import Redactor

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor | None = None, static: dict[str, str] | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor([])
        self.static = static or {}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self.static,
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        for key, value in entry.items():
            if key not in ("ts", "level", "logger"):
                entry[key] = self.redactor.redact_value(value if _jsonable(value) else str(value))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | dict | list | tuple) or value is None


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
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its lines carry full URLs with arguments
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    return handler
