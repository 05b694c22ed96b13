from __future__ import annotations

import json
from typing import Any

from agentfleet_runtime.config import ModelConfig
from agentfleet_runtime.reasoning.rules import DEFAULT_REPLY, RulesReasoner, render
from agentfleet_runtime.tools.toolbox import ToolResult


class RecordingToolBox:
    """Stands in for the ToolBox: records calls and answers from a script."""

    def __init__(self, result: ToolResult) -> None:
        self.result = result
        self.calls: list[tuple[str, Any]] = []

    def __bool__(self) -> bool:
        return True

    async def call(self, name: str, arguments: Any) -> ToolResult:
        self.calls.append((name, arguments))
        return self.result


def reasoner(*rules: dict[str, Any]) -> RulesReasoner:
    return RulesReasoner(ModelConfig.model_validate({"provider": "rules", "name": "rules", "rules": list(rules)}))


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "be nice"}, {"role": "user", "content": text}]


CUSTOMER = {"name": "Ada", "tier": "gold"}


async def test_first_matching_rule_calls_its_tool_with_templated_arguments() -> None:
    tools = RecordingToolBox(ToolResult(True, json.dumps(CUSTOMER), "success", CUSTOMER))
    r = reasoner(
        {
            "pattern": r"customer (?P<email>\S+@\S+)",
            "tool": "lookup",
            "arguments": {"email": "{email}"},
            "reply": "{tool_result[name]} ({tool_result[tier]})",
        },
        {"pattern": "customer", "reply": "never reached"},
    )
    result = await r.answer(user("Find CUSTOMER ada@example.com now"), tools)  # type: ignore[arg-type]
    assert tools.calls == [("lookup", {"email": "ada@example.com"})]
    assert result.reply == "Ada (gold)"
    assert [c.outcome for c in result.tool_calls] == ["success"]


async def test_numbered_groups_and_whole_tool_result() -> None:
    tools = RecordingToolBox(ToolResult(True, "{}", "success", {"ok": True}))
    r = reasoner(
        {"pattern": r"order (\d+)", "tool": "order", "arguments": {"id": "{1}"}, "reply": "Order {1}: {tool_result}"}
    )
    result = await r.answer(user("where is order 77?"), tools)  # type: ignore[arg-type]
    assert tools.calls == [("order", {"id": "77"})]
    assert result.reply == 'Order 77: {"ok": true}'


async def test_failed_tool_degrades_the_answer() -> None:
    tools = RecordingToolBox(ToolResult(False, "", "circuit_open", {"error": "crm is unavailable right now"}))
    r = reasoner({"pattern": "customer", "tool": "lookup", "reply": "{tool_result}"})
    result = await r.answer(user("customer please"), tools)  # type: ignore[arg-type]
    assert "crm is unavailable right now" in result.reply
    assert result.tool_calls[0].outcome == "circuit_open"


async def test_no_match_gives_the_deterministic_default() -> None:
    tools = RecordingToolBox(ToolResult(True, "", "success"))
    r = reasoner({"pattern": "^hello", "reply": "hi"})
    first = await r.answer(user("something else"), tools)  # type: ignore[arg-type]
    second = await r.answer(user("something else"), tools)  # type: ignore[arg-type]
    assert first.reply == second.reply == DEFAULT_REPLY
    assert tools.calls == []


async def test_stream_yields_the_reply_then_the_result() -> None:
    r = reasoner({"pattern": "hello", "reply": "Hello there, how can I help you with your account today?"})
    events = [e async for e in r.stream(user("hello"), RecordingToolBox(ToolResult(True, "", "")))]  # type: ignore[arg-type]
    *chunks, result = events
    assert len(chunks) > 1
    assert "".join(chunks) == result.reply  # type: ignore[union-attr]


def test_render_tolerates_missing_fields_and_broken_templates() -> None:
    assert render("{missing}!", {}) == "!"
    assert render("{unclosed", {}) == "{unclosed"
