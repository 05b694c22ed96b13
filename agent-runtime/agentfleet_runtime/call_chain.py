"""The chain of Agents a request has passed through, carried between runtimes in a header.

Agents call Agents through agent connectors (tools/agent_tools.py). The operator refuses Agents whose
connectors make a loop, but a runtime must not trust that alone (configs made by hand, an operator
that has not caught up with an edit): every call to another Agent lists the Agents already in the
chain, this one last, and a runtime that finds itself in the list it receives refuses with 508
instead of asking on forever.
"""

from __future__ import annotations

import contextvars

HEADER = "X-Agentfleet-Call-Chain"
MAX_NAMES = 64  # more than any sane chain; a longer header is cut, never trusted to grow

# The chain of the request being served, this runtime's own Agent included (set by the middleware).
chain_var: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("call_chain", default=())


def parse(value: str | None) -> tuple[str, ...]:
    """The Agent names of a received header, in order ("a, b" -> ("a", "b"))."""
    if not value:
        return ()
    return tuple(name.strip() for name in value.split(",") if name.strip())[:MAX_NAMES]


def render(chain: tuple[str, ...]) -> str:
    return ", ".join(chain)
