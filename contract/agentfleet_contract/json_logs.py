"""The one JSON log format of the operator and the runtime: one object per line, same field names.

A log pipeline (or a person with jq) then reads both programs the same way:

    ts          UTC time with milliseconds, 2024-05-01T12:00:00.123Z
    level       debug | info | warning | error | critical
    logger      the Python logger's name
    msg         the message (the operator's lines called it `message` before the formats were one)
    exc         the traceback, when there is one
    ...         the program's static fields (the runtime: agent, namespace, revision), context
                fields (the runtime: request_id) and whatever was passed with `extra=`

Redaction (the runtime's PII patterns) is for content: the message, the traceback and `extra=` fields.
Static and context fields are the program's own identifiers, and `verbatim` names the `extra=` fields
that are identifiers too (a tool's name, an outcome): logs are matched with responses and metrics by
them, so a request id of ten digits must not come out as a phone number. Terminal presentation
(uvicorn's `color_message`, the message again with colour codes) is never a field.

Standard library only: the operator must not import the runtime to log like it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["JsonLogFormatter"]

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
# Fields a redactor must leave alone: they are ours, not the caller's text.
_NOT_REDACTED = frozenset({"ts", "level", "logger"})
# `extra=` attributes that only repeat the message for a terminal.
_PRESENTATION = frozenset({"color_message"})


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | dict | list | tuple) or value is None


def _no_redaction(value: Any) -> Any:
    return value


class JsonLogFormatter(logging.Formatter):
    """`static`: fields on every line; `context`: fields read per line (None values are left out);
    `redact`: applied to the message, the traceback and every `extra=` field not in `verbatim` (the
    runtime's PII redaction), never to ts, level, logger, static or context fields;
    `skip`: `extra=` attributes never to log (the operator's: what kopf attaches to its records)."""

    def __init__(
        self,
        *,
        static: Mapping[str, Any] | None = None,
        context: Callable[[], Mapping[str, Any]] | None = None,
        redact: Callable[[Any], Any] | None = None,
        skip: Collection[str] = (),
        verbatim: Collection[str] = (),
    ) -> None:
        super().__init__()
        self.static = dict(static or {})
        self.context = context
        self.redact = redact or _no_redaction
        self.skip = frozenset(skip) | _PRESENTATION
        self.verbatim = frozenset(verbatim) | _NOT_REDACTED | frozenset(self.static)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self.static,
        }
        verbatim = self.verbatim
        if self.context is not None:
            context = {key: value for key, value in self.context().items() if value is not None}
            entry.update(context)
            verbatim = verbatim | context.keys()
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in self.skip and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        for key, value in entry.items():
            if key not in verbatim:
                entry[key] = self.redact(value if _jsonable(value) else str(value))
        return json.dumps(entry, ensure_ascii=False, default=str)
