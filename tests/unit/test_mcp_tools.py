"""The pure rules of MCP Connectors: model-visible names, the filters, schema hashes, and the
discovery scheduler's bookkeeping."""

from __future__ import annotations

import asyncio

import pytest
from agentfleet_operator.api.connector import DiscoveredTool
from agentfleet_operator.builders.mcp_tools import (
    ServerTool,
    model_tool_name,
    offered_to_agent,
    schema_hash,
    select_tools,
)
from agentfleet_operator.reconcile.mcp_discovery import DiscoveryResult, legacy_sse, where
from agentfleet_operator.reconcile.tool_discovery import ToolDiscovery


@pytest.mark.parametrize(
    ("server", "model"),
    [
        ("lookup_order", "lookup_order"),
        ("getOrder", "get_order"),
        ("orders.list", "orders_list"),
        ("Search-Docs", "search_docs"),
        ("2fa_reset", "tool_2fa_reset"),
        ("x" * 100, "x" * 63),
    ],
)
def test_model_names_are_valid_tool_names(server: str, model: str) -> None:
    assert model_tool_name(server) == model


def _tool(name: str, schema: dict | None = None) -> ServerTool:
    return ServerTool(name, f"{name} does things", schema or {"type": "object"}, idempotent=False)


def test_select_keeps_the_server_order_and_names_what_is_missing() -> None:
    offered = [_tool("lookup_order"), _tool("getOrder"), _tool("check_stock")]
    selection = select_tools(offered, ["check_stock", "get_order", "cancel_order"])
    assert [t.name for t in selection.tools] == ["getOrder", "check_stock"]
    assert selection.missing == ["cancel_order"]
    assert select_tools(offered, []).missing == [] and len(select_tools(offered, []).tools) == 3


def test_two_server_names_for_one_model_name_keep_the_first() -> None:
    selection = select_tools([_tool("get_order"), _tool("getOrder")], [])
    assert [t.name for t in selection.tools] == ["get_order"]
    assert selection.clashing == ["getOrder"]


def test_schema_hash_follows_the_schema_not_its_key_order() -> None:
    a = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    b = {"required": ["id"], "properties": {"id": {"type": "string"}}, "type": "object"}
    assert schema_hash(a) == schema_hash(b)
    assert schema_hash(a) != schema_hash(a | {"required": ["id", "region"]})


def test_the_agents_filter_matches_server_or_model_names() -> None:
    tools = [DiscoveredTool(name="getOrder"), DiscoveredTool(name="check_stock")]
    kept, unknown = offered_to_agent(tools, ["get_order", "nope"])
    assert [t.name for t in kept] == ["getOrder"] and unknown == ["nope"]
    assert offered_to_agent(tools, []) == (tools, [])


def test_endpoints_are_shown_without_credentials() -> None:
    assert where("https://user:pw@mcp.example.com:8443/mcp?key=abc") == "https://mcp.example.com:8443/mcp"
    assert legacy_sse("http://x/sse") and legacy_sse("http://x/v1/sse/") and not legacy_sse("http://x/mcp")


async def test_discovery_runs_once_per_fingerprint_and_again_after_the_interval() -> None:
    now = [100.0]
    discovery = ToolDiscovery(interval=60, clock=lambda: now[0])
    calls: list[str] = []
    done = asyncio.Event()

    async def discover() -> DiscoveryResult:
        calls.append("x")
        return DiscoveryResult(True, "Discovered", "1 tool(s)")

    key = ("Connector", "ns", "orders")
    assert discovery.due_in(key, (1, "h")) == 0
    discovery.start(key, (1, "h"), discover, done.set)
    discovery.start(key, (1, "h"), discover, done.set)  # already running: not twice
    await asyncio.wait_for(done.wait(), 5)
    assert calls == ["x"]
    assert discovery.latest(key, (1, "h")) is not None
    assert discovery.due_in(key, (1, "h")) == 60
    now[0] += 61
    assert discovery.due_in(key, (1, "h")) == 0
    # A new Secret hash: the old answer is not an answer for it, so it is due at once.
    assert discovery.latest(key, (1, "other")) is None and discovery.due_in(key, (1, "other")) == 0
    discovery.forget(key)
    assert discovery.latest(key, (1, "h")) is None


async def test_a_hung_discovery_is_cancelled_by_a_newer_fingerprint_and_on_close() -> None:
    discovery = ToolDiscovery(interval=60)
    started = asyncio.Event()

    async def hang() -> DiscoveryResult:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    key = ("Connector", "ns", "orders")
    discovery.start(key, (1, ""), hang, lambda: None)
    await started.wait()
    assert discovery.running(key, (1, ""))
    discovery.start(key, (2, ""), hang, lambda: None)
    assert not discovery.running(key, (1, "")) and discovery.running(key, (2, ""))
    await discovery.aclose()
    assert not discovery.running(key, (2, ""))
