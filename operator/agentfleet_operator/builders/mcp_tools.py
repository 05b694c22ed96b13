"""An MCP server's tools, as a Connector's status records them and as an Agent offers them.

Pure: the discovery (reconcile/mcp_discovery.py) hands in what the server said; this decides the
names the model sees, the schema hashes, and what the Connector's and the Agent's filters keep.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api.connector import DiscoveredTool

# What the runtime (and OpenAI's function names) accept as a tool name.
_MODEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class ServerTool:
    """One tool as the server describes it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    # The server says calling it twice does no more than once (readOnlyHint or idempotentHint).
    idempotent: bool


@dataclass
class ToolSelection:
    """What a Connector's status records: the kept tools and what the user should hear about."""

    tools: list[DiscoveredTool] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # named in spec.tools, not offered by the server
    clashing: list[str] = field(default_factory=list)  # two server names for one model name; the later dropped


def model_tool_name(server_name: str) -> str:
    """The name the model sees: the server's when it is already a valid one, else its snake_case form
    (getOrder → get_order, orders.list → orders_list)."""
    if _MODEL_NAME.match(server_name):
        return server_name
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", server_name).lower()
    snake = re.sub(r"[^a-z0-9_]+", "_", snake).strip("_")
    if not snake or not snake[0].isalpha():
        snake = f"tool_{snake}"
    return snake[:63]


def schema_hash(schema: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _named(tool_name: str, wanted: set[str]) -> bool:
    return tool_name in wanted or model_tool_name(tool_name) in wanted


def select_tools(offered: Iterable[ServerTool], wanted: Sequence[str]) -> ToolSelection:
    """The server's tools kept by the Connector's spec.tools (empty: all), in the server's order."""
    names = set(wanted)
    selection = ToolSelection()
    seen: set[str] = set()
    matched: set[str] = set()
    for tool in offered:
        if names and not _named(tool.name, names):
            continue
        matched.update({tool.name, model_tool_name(tool.name)} & names)
        model_name = model_tool_name(tool.name)
        if model_name in seen:
            selection.clashing.append(tool.name)
            continue
        seen.add(model_name)
        selection.tools.append(
            DiscoveredTool(
                name=tool.name,
                description=tool.description,
                schema_hash=schema_hash(tool.input_schema),
                input_schema=tool.input_schema,
                idempotent=tool.idempotent,
            )
        )
    selection.missing = sorted(names - matched)
    return selection


def offered_to_agent(tools: Sequence[DiscoveredTool], wanted: Sequence[str]) -> tuple[list[DiscoveredTool], list[str]]:
    """The Connector's tools an Agent's connectors[].tools keeps (empty: all), and the names it lists
    that the Connector does not have."""
    names = set(wanted)
    if not names:
        return list(tools), []
    kept = [tool for tool in tools if _named(tool.name, names)]
    found = {tool.name for tool in kept} | {model_tool_name(tool.name) for tool in kept}
    return kept, sorted(names - found)
