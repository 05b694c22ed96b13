"""The built-in deterministic reasoner: regular expressions instead of a model.

Useful for tests, benchmarks and agents that only route requests to tools. The first rule
whose pattern matches the last user message wins; templates are filled from the match's
groups ({0} is the whole match, {1}.. numbered groups, {name} named groups) and, after a
tool call, from {tool_result} (the result as JSON; {tool_result[field]} reaches inside it).

Of the caller's parameters (request_params.py), `stop` and `max_tokens` shape the reply; the
sampling ones have nothing to act on and no effect.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..config import ModelConfig
from ..deadline import Deadline, bounded
from ..request_params import ModelParams
from ..tools.toolbox import ToolBox, ToolCallRecord
from .base import ReasoningResult, StreamEvent, Usage, chunk_text, estimate_tokens

DEFAULT_REPLY = "Sorry, I can't help with that request."


class _JsonView:
    """A tool result in a template: JSON text as a whole, its fields by subscript."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getitem__(self, key: str) -> Any:
        if isinstance(self.value, dict):
            inner = self.value.get(key, "")
        elif isinstance(self.value, list) and key.isdigit() and int(key) < len(self.value):
            inner = self.value[int(key)]
        else:
            inner = ""
        return _JsonView(inner) if isinstance(inner, dict | list) else inner

    def __format__(self, spec: str) -> str:
        text = self.value if isinstance(self.value, str) else json.dumps(self.value, ensure_ascii=False)
        return format(text, spec)


class _Template(string.Formatter):
    """str.format where a missing field renders empty instead of raising."""

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        return kwargs.get(str(key), "")


_TEMPLATE = _Template()


def render(template: str, values: Mapping[str, Any]) -> str:
    try:
        return _TEMPLATE.vformat(template, (), values)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return template  # a broken template is shown as written rather than failing the request


def apply_limits(reply: str, params: ModelParams | None) -> tuple[str, str]:
    """The reply ended before the first stop sequence, then cut to max_tokens; with its finish_reason."""
    if params is None:
        return reply, "stop"
    for sequence in params.stop:
        index = reply.find(sequence)
        if index >= 0:
            reply = reply[:index]
    if params.max_tokens is not None and estimate_tokens(reply) > params.max_tokens:
        return reply[: params.max_tokens * 4], "length"  # estimate_tokens counts four characters a token
    return reply, "stop"


class RulesReasoner:
    def __init__(self, config: ModelConfig) -> None:
        self._rules = [(re.compile(rule.pattern, re.IGNORECASE), rule) for rule in config.rules]

    async def answer(
        self,
        conversation: list[dict[str, Any]],
        tools: ToolBox,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> ReasoningResult:
        text = next((m["content"] for m in reversed(conversation) if m.get("role") == "user"), "") or ""
        usage = Usage(sum(estimate_tokens(str(m.get("content") or "")) for m in conversation), 0)
        reply, records = DEFAULT_REPLY, []
        for pattern, rule in self._rules:
            match = pattern.search(text)
            if match is None:
                continue
            values: dict[str, Any] = {"0": match.group(0)}
            values.update({str(i): g or "" for i, g in enumerate(match.groups(), start=1)})
            values.update({k: v or "" for k, v in match.groupdict().items()})
            if rule.tool:
                arguments = {key: render(template, values) for key, template in rule.arguments.items()}
                async with bounded(deadline, f"tool {rule.tool} was running"):
                    result = await tools.call(rule.tool, arguments)
                records.append(ToolCallRecord(rule.tool, arguments, result.outcome))
                if result.ok:
                    values["tool_result"] = _JsonView(result.data)
                    reply = render(rule.reply or "{tool_result}", values)
                else:
                    error = result.data.get("error") if isinstance(result.data, dict) else result.content
                    reply = f"Sorry, I couldn't complete that right now: {error}"
            else:
                reply = render(rule.reply or DEFAULT_REPLY, values)
            break
        reply, reason = apply_limits(reply, params)
        usage.output_tokens = estimate_tokens(reply)
        return ReasoningResult(reply, records, usage, reason)

    async def stream(
        self,
        conversation: list[dict[str, Any]],
        tools: ToolBox,
        params: ModelParams | None = None,
        deadline: Deadline | None = None,
    ) -> AsyncIterator[StreamEvent]:
        result = await self.answer(conversation, tools, params, deadline)
        for chunk in chunk_text(result.reply):
            yield chunk
        yield result

    async def aclose(self) -> None:
        return None
