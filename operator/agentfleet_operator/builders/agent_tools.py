"""Agents as tools: the one tool an agent Connector offers, and the loops such Connectors can make.

An agent Connector (`type: agent`) turns another Agent of the namespace into a tool the model calls
with one message. Its name and description default from the target, so a Connector needs no tool
list; `spec.tools` may hold one entry overriding them. The loop walk is pure (the caller hands in
the edges), so it is tested without a cluster and the reconciler decides what reading an edge means.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable

from ..api.connector import ConnectorSpec

# What the runtime sends the target: one user message (agent-runtime tools/agent_tools.py).
MESSAGE_PARAMETERS: dict[str, object] = {
    "type": "object",
    "properties": {"message": {"type": "string", "description": "What to ask the agent, in plain words."}},
    "required": ["message"],
}


def default_tool_name(target: str) -> str:
    """ask_<target>, with the characters an Agent name may hold but a tool name may not made `_`."""
    return "ask_" + re.sub(r"[^a-z0-9_]", "_", target)


def tool_name(spec: ConnectorSpec) -> str:
    assert spec.agent_ref is not None  # type agent: required by the API
    return spec.tools[0].name if spec.tools else default_tool_name(spec.agent_ref.name)


def tool_description(spec: ConnectorSpec) -> str:
    assert spec.agent_ref is not None
    if spec.tools and spec.tools[0].description:
        return spec.tools[0].description
    return f"Ask the {spec.agent_ref.name} agent; it answers in plain text."


def tool_names(spec: ConnectorSpec) -> set[str]:
    """The names an Agent's `spec.connectors[].tools` may pick from this Connector."""
    if spec.type == "agent":
        return {tool_name(spec)}
    return {tool.name for tool in spec.tools}


def find_loop(start: str, targets: Callable[[str], Iterable[str]]) -> list[str] | None:
    """The shortest path of agent Connectors from `start` back to itself ([start, ..., start]), or None.

    targets(agent) are the Agents that agent calls through its agent Connectors. Breadth first, so
    the loop named is the shortest, and each Agent is expanded once, so a graph with loops elsewhere
    (B <-> C reached from A) ends; only loops through `start` are its own problem."""
    parents: dict[str, str] = {}
    queue: deque[str] = deque([start])
    seen = {start}
    while queue:
        agent = queue.popleft()
        for target in targets(agent):
            if target == start:
                back = [agent]  # agent, its parent, ... up to start
                while back[-1] != start:
                    back.append(parents[back[-1]])
                return [*reversed(back), start]
            if target not in seen:
                seen.add(target)
                parents[target] = agent
                queue.append(target)
    return None
