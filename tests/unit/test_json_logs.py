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
