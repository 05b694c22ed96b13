"""What a failed tool call logs as its reason: the runtime's own words, never an argument value
or what the system echoed, while the model still reads the whole explanation."""

from __future__ import annotations

import json

import httpx
from agentfleet_runtime.config import ConnectorConfig
from agentfleet_runtime.tools.connector import ToolError
from agentfleet_runtime.tools.toolbox import ToolBox

CONNECTOR = {
    "name": "crm",
    "type": "http",
    "endpoint": "http://crm.invalid",
    "tools": [
        {
            "name": "lookup_customer",
            "parameters": {
                "type": "object",
                "properties": {"email": {"type": "string", "minLength": 5}, "limit": {"type": "integer"}},
            },
        }
    ],
}


def test_a_tool_error_keeps_the_systems_words_out_of_its_reason() -> None:
    error = ToolError("http_error", "crm answered HTTP 404", detail='{"error": "no customer ada@example.com"}')
    assert error.reason == "crm answered HTTP 404"
    assert error.message == 'crm answered HTTP 404: {"error": "no customer ada@example.com"}' == str(error)
    plain = ToolError("circuit_open", "crm is unavailable right now")
    assert plain.reason == plain.message == "crm is unavailable right now"


async def test_invalid_arguments_name_the_rule_not_the_value() -> None:
    async with httpx.AsyncClient() as http:
        tools = ToolBox([ConnectorConfig.model_validate(CONNECTOR)], http)
        short = await tools.call("lookup_customer", {"email": "a@b"})
        wrong_type = await tools.call("lookup_customer", json.dumps({"limit": "ten-thousand"}))
    assert (short.outcome, wrong_type.outcome) == ("invalid_arguments", "invalid_arguments")
    assert "'a@b' is too short" in short.content  # the model learns what to fix
    assert short.reason == "invalid arguments for lookup_customer: email fails minLength"
    assert wrong_type.reason == "invalid arguments for lookup_customer: limit fails type"
    assert "ten-thousand" in wrong_type.content and "ten-thousand" not in wrong_type.reason


async def test_an_unknown_tool_is_logged_as_unknown(caplog) -> None:
    async with httpx.AsyncClient() as http:
        tools = ToolBox([ConnectorConfig.model_validate(CONNECTOR)], http)
        with caplog.at_level("INFO", logger="agentfleet_runtime.tools.toolbox"):
            result = await tools.call("send_to_jane_doe", {})
    assert result.outcome == "unknown_tool" and "send_to_jane_doe" in result.content
    (entry,) = [r for r in caplog.records if r.getMessage() == "tool call failed"]
    assert (entry.tool, entry.outcome, entry.reason) == (  # type: ignore[attr-defined]
        "unknown",
        "unknown_tool",
        "the model asked for an unknown tool",
    )
