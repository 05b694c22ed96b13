"""One JSON log format for the operator and the runtime (agentfleet_contract.json_logs)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from agentfleet_contract.json_logs import JsonLogFormatter
from agentfleet_operator.main import JsonFormatter as OperatorFormatter
from agentfleet_runtime.logging import JsonFormatter as RuntimeFormatter
from agentfleet_runtime.logging import request_id_var
from agentfleet_runtime.memory.redaction import Redactor
from hypothesis import given, settings
from hypothesis import strategies as st

FIELDS = {"ts", "level", "logger", "msg"}


def record(message: str = "reconciled %s", *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("agentfleet.test", logging.WARNING, __file__, 1, message, args or None, exc_info)
    made.__dict__.update(extra)
    return made


def test_operator_and_runtime_write_the_same_fields() -> None:
    operator = json.loads(OperatorFormatter().format(record("reconciled %s", "ns/bot")))
    runtime = json.loads(RuntimeFormatter().format(record("reconciled %s", "ns/bot")))
    assert set(operator) == set(runtime) == FIELDS
    assert operator["msg"] == runtime["msg"] == "reconciled ns/bot"
    assert operator["level"] == "warning" and operator["logger"] == "agentfleet.test"
    assert operator["ts"].endswith("Z") and len(operator["ts"]) == len("2024-05-01T12:00:00.123Z")


def test_tracebacks_and_extra_fields() -> None:
    line = json.loads(JsonLogFormatter().format(record("failed", exc=True, status=503, path="/v1/x")))
    assert "RuntimeError: boom" in line["exc"]
    assert line["status"] == 503 and line["path"] == "/v1/x"


def test_the_operator_leaves_out_what_kopf_attaches() -> None:
    kopf_extras = {"settings": object(), "k8s_skip": False, "k8s_ref": {"name": "bot"}}
    assert set(json.loads(OperatorFormatter().format(record("x", **kopf_extras)))) == FIELDS


def test_the_runtime_adds_identity_request_id_and_redaction() -> None:
    formatter = RuntimeFormatter(Redactor(["email"]), {"agent": "bot", "revision": "r1"})
    token = request_id_var.set("req-1")
    try:
        line = json.loads(formatter.format(record("caller %s", "jane@example.com", caller="jane@example.com")))
    finally:
        request_id_var.reset(token)
    assert line["agent"] == "bot" and line["revision"] == "r1" and line["request_id"] == "req-1"
    assert "jane@example.com" not in json.dumps(line)
    assert "request_id" not in json.loads(formatter.format(record("outside a request")))


def test_the_contract_package_stays_light() -> None:
    # Both programs import it; it must drag in neither side nor either side's libraries.
    code = (
        "import sys, agentfleet_contract.json_logs, agentfleet_contract.runtime_config; "
        "heavy = {'fastapi', 'starlette', 'httpx', 'redis', 'uvicorn', 'kopf', 'kubernetes', "
        "'agentfleet_operator', 'agentfleet_runtime'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- Redaction is for content, never for what logs are correlated by -------------------------------

ALL_PATTERNS = Redactor(["email", "phone", "creditCard", "iban"])


def _runtime_line(rec: logging.LogRecord, request_id: str | None = None) -> dict[str, object]:
    formatter = RuntimeFormatter(ALL_PATTERNS, {"agent": "bot-4915112345678", "revision": "1234567890"})
    token = request_id_var.set(request_id)
    try:
        return json.loads(formatter.format(rec))
    finally:
        request_id_var.reset(token)


def test_a_request_id_of_digits_is_logged_verbatim() -> None:
    line = _runtime_line(record("request"), request_id="1234567890")
    assert line["request_id"] == "1234567890"
    # The agent's identity is the program's own, whatever digits it holds.
    assert (line["agent"], line["revision"]) == ("bot-4915112345678", "1234567890")


@settings(max_examples=300, deadline=None)
@given(generated=st.uuids().map(lambda u: u.hex))
def test_generated_request_ids_are_logged_verbatim(generated: str) -> None:
    # The middleware makes uuid4().hex ids; a few per cent hold seven digits in a row (a "phone").
    assert _runtime_line(record("request"), request_id=generated)["request_id"] == generated


def test_identifier_fields_stay_and_content_fields_are_redacted() -> None:
    rec = record(
        "tool call failed for %s",
        "jane@example.com",
        tool="lookup_customer",
        connector="erp-2024-0001",
        outcome="http_error",
        reason="crm answered HTTP 503 for +44 20 7946 0958",
        path="/v1/sessions/jane.doe@example.com/messages",
    )
    line = _runtime_line(rec, request_id="req-1")
    assert line["tool"] == "lookup_customer" and line["outcome"] == "http_error"
    assert line["connector"] == "erp-2024-0001"  # a phone-shaped digit run in a name is still a name
    assert line["msg"] == "tool call failed for [REDACTED:email]"
    assert line["reason"] == "crm answered HTTP 503 for [REDACTED:phone]"
    assert line["path"] == "/v1/sessions/[REDACTED:email]/messages"


def test_a_log_call_cannot_pass_off_content_as_the_request_id() -> None:
    line = _runtime_line(record("x", request_id="jane@example.com", agent="jane@example.com"), request_id="req-1")
    assert line["request_id"] == "req-1" and line["agent"] == "bot-4915112345678"
    assert "jane@example.com" not in json.dumps(line)


def test_tracebacks_are_redacted() -> None:
    try:
        raise ValueError("no customer jane@example.com")
    except ValueError:
        rec = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = _runtime_line(rec)
    assert "[REDACTED:email]" in line["exc"] and "jane@example.com" not in line["exc"]  # type: ignore[operator]


def test_uvicorns_color_message_is_not_a_field() -> None:
    # uvicorn passes the message again with terminal colour codes, as extra={"color_message": ...}.
    rec = record("Started server process [%d]", 42, color_message="Started server process [\x1b[36m%d\x1b[0m]")
    for formatter in (OperatorFormatter(), RuntimeFormatter(), JsonLogFormatter()):
        line = json.loads(formatter.format(rec))
        assert set(line) == FIELDS and line["msg"] == "Started server process [42]"
