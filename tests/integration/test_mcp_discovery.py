"""MCP Connectors on the local cluster: the operator lists a real MCP server's tools (the demo server,
built with the MCP SDK, on loopback) into the Connector's status, reports failures by reason, and
makes the discovered tools part of every using Agent's revision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.mcp import DemoMCP, start_demo_mcp
from tests.integration.conftest import DISCOVERY_ENV
from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import (
    apply,
    condition,
    get,
    queue_drained,
    ready,
    reconciles,
    rules_agent,
    secret,
    wait_for,
)

pytestmark = pytest.mark.integration

TOKEN = "mcp-token-7b1e9f0c2d"


@pytest.fixture
def mcp_server() -> Iterator[DemoMCP]:
    server = start_demo_mcp(token=TOKEN)
    try:
        yield server
    finally:
        server.stop()


def mcp_connector(name: str, endpoint: str, secret_name: str | None = "mcp-creds", **spec: Any) -> dict[str, Any]:
    auth: dict[str, Any] = {"type": "bearer", "secretRef": {"name": secret_name}} if secret_name else {"type": "none"}
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {"type": "mcp", "endpoint": endpoint, "auth": auth, "timeoutSeconds": 3, **spec},
    }


def desk_over(server: DemoMCP) -> list[dict[str, Any]]:
    """The Secret, an mcp Connector to `server` and an Agent using all of its tools."""
    return [
        secret("mcp-creds", token=TOKEN),
        mcp_connector("orders", server.url),
        rules_agent("desk", connectors=[{"name": "orders"}]),
    ]


def discovered(kubectl: Any, name: str, namespace: str, reason: str) -> dict[str, Any] | None:
    conn = get(kubectl, "connector", name, namespace)
    return conn if condition(conn, "ToolsDiscovered").get("reason") == reason else None


def agent_with(kubectl: Any, namespace: str, type_: str, reason: str, name: str = "desk") -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        agent = get(kubectl, "agent", name, namespace)
        return agent if condition(agent, type_).get("reason") == reason else None

    return wait_for(f"{type_} {reason}", seen)


def runtime_config(kubectl: Any, agent: dict[str, Any], namespace: str) -> dict[str, Any]:
    revision = agent["status"]["revision"]["stable"]
    cm = get(kubectl, "configmap", f"{agent['metadata']['name']}-config-{revision}", namespace)
    assert cm is not None, f"no ConfigMap for revision {revision}"
    return json.loads(cm["data"]["config.json"])


def test_discovered_tools_fill_the_status_and_the_agents_config(
    operator: OperatorProcess, kubectl: Any, namespace: str, mcp_server: DemoMCP
) -> None:
    apply(kubectl, namespace, secret("mcp-creds", token=TOKEN), mcp_connector("orders", mcp_server.url))
    conn = wait_for("Discovered", lambda: discovered(kubectl, "orders", namespace, "Discovered"))
    status = conn["status"]
    assert condition(conn, "ToolsDiscovered")["status"] == "True"
    assert condition(conn, "Ready")["status"] == "True"
    assert status["toolCount"] == 3
    tools = {tool["name"]: tool for tool in status["tools"]}
    assert set(tools) == {"lookup_order", "create_ticket", "check_stock"}
    assert tools["lookup_order"]["inputSchema"]["required"] == ["order_id"]
    assert tools["lookup_order"]["idempotent"] is True and tools["create_ticket"]["idempotent"] is False
    assert len({tool["schemaHash"] for tool in tools.values()}) == 3
    wide = kubectl("get", "connector", "orders", "-n", namespace, "-o", "wide", check=True).stdout
    header, row = wide.splitlines()[:2]
    assert row.split()[header.split().index("TOOLS")] == "3"

    apply(kubectl, namespace, rules_agent("desk", connectors=[{"name": "orders", "tools": ["lookup_order"]}]))
    agent = wait_for("Ready", lambda: ready(kubectl, "desk", namespace))
    (config,) = runtime_config(kubectl, agent, namespace)["connectors"]
    assert config["type"] == "mcp" and config["endpoint"] == mcp_server.url
    (tool,) = config["tools"]
    assert tool["name"] == "lookup_order" and tool["idempotent"] is True
    assert tool["parameters"] == tools["lookup_order"]["inputSchema"]
    # The token reaches the pods as a mounted file, never through the config or the status.
    everything = kubectl("get", "connector,agent,configmap,events", "-n", namespace, "-o", "yaml", check=True).stdout
    assert TOKEN not in everything


def test_a_filtered_tool_the_server_lacks_is_named(
    operator: OperatorProcess, kubectl: Any, namespace: str, mcp_server: DemoMCP
) -> None:
    tools = [{"name": "lookup_order"}, {"name": "cancel_order"}]
    apply(kubectl, namespace, secret("mcp-creds", token=TOKEN), mcp_connector("orders", mcp_server.url, tools=tools))
    conn = wait_for("ToolNotFound", lambda: discovered(kubectl, "orders", namespace, "ToolNotFound"))
    message = condition(conn, "ToolsDiscovered")["message"]
    assert "cancel_order" in message and "lookup_order, create_ticket, check_stock" in message
    assert condition(conn, "Ready")["status"] == "False"
    assert [tool["name"] for tool in conn["status"]["tools"]] == ["lookup_order"]


def test_a_wrong_token_is_auth_failed_and_never_shown(
    operator: OperatorProcess, kubectl: Any, namespace: str, mcp_server: DemoMCP
) -> None:
    wrong = "wrong-token-5d0c8a7e41"
    apply(kubectl, namespace, secret("mcp-creds", token=wrong), mcp_connector("orders", mcp_server.url))
    conn = wait_for("AuthFailed", lambda: discovered(kubectl, "orders", namespace, "AuthFailed"))
    assert "401" in condition(conn, "ToolsDiscovered")["message"]
    assert condition(conn, "Ready")["reason"] == "AuthFailed"
    assert "tools" not in conn["status"]
    shown = kubectl("get", "connector,events", "-n", namespace, "-o", "yaml", check=True).stdout
    assert wrong not in shown and TOKEN not in shown
    assert wrong not in operator.log_path.read_text()

    # The right token: discovery runs again at once (the Secret changed), no interval to wait out.
    apply(kubectl, namespace, secret("mcp-creds", token=TOKEN))
    wait_for("Discovered", lambda: discovered(kubectl, "orders", namespace, "Discovered"), timeout=30)


def test_an_agent_waits_for_the_first_discovery(operator: OperatorProcess, kubectl: Any, namespace: str) -> None:
    nowhere = start_demo_mcp(token=TOKEN)
    url = nowhere.url
    nowhere.stop()  # a port nothing listens on any more
    apply(
        kubectl,
        namespace,
        mcp_connector("orders", url, secret_name=None),
        rules_agent("desk", connectors=[{"name": "orders"}]),
    )
    wait_for("Unreachable", lambda: discovered(kubectl, "orders", namespace, "Unreachable"))
    agent = agent_with(kubectl, namespace, "ConnectorsReady", "ToolsNotDiscovered")
    assert "cannot reach the MCP server" in condition(agent, "ConnectorsReady")["message"]
    assert get(kubectl, "deployment", "desk", namespace) is None


def test_an_outage_keeps_the_tools_and_a_schema_change_is_a_new_revision(
    operator: OperatorProcess, kubectl: Any, namespace: str, mcp_server: DemoMCP
) -> None:
    apply(kubectl, namespace, *desk_over(mcp_server))
    first = wait_for("Ready", lambda: ready(kubectl, "desk", namespace))
    revision = first["status"]["revision"]["stable"]
    before = {t["name"]: t["schemaHash"] for t in get(kubectl, "connector", "orders", namespace)["status"]["tools"]}

    mcp_server.stop()
    conn = wait_for("Unreachable", lambda: discovered(kubectl, "orders", namespace, "Unreachable"), timeout=60)
    assert conn["status"]["toolCount"] == 3, "the last discovered tools stay"
    assert "stay in use" in condition(conn, "ToolsDiscovered")["message"]
    agent = agent_with(kubectl, namespace, "ConnectorsReady", "Unreachable")
    assert condition(agent, "Ready")["reason"] == "Unreachable" and agent["status"]["phase"] == "Degraded"
    assert agent["status"]["revision"]["stable"] == revision, "an outage is not a new revision"

    mcp_server.restart(schema="v2")  # back, with lookup_order wanting a region too
    conn = wait_for("Discovered", lambda: discovered(kubectl, "orders", namespace, "Discovered"), timeout=60)
    after = {t["name"]: t["schemaHash"] for t in conn["status"]["tools"]}
    assert after["lookup_order"] != before["lookup_order"]
    assert after["create_ticket"] == before["create_ticket"]
    agent = wait_for(
        "new revision",
        lambda: (a := ready(kubectl, "desk", namespace)) and a["status"]["revision"]["stable"] != revision and a,
        timeout=120,
    )
    tool = next(
        t for t in runtime_config(kubectl, agent, namespace)["connectors"][0]["tools"] if t["name"] == "lookup_order"
    )
    assert tool["parameters"]["required"] == ["order_id", "region"]


def test_an_operator_restart_rediscovers_and_writes_nothing(
    operator: OperatorProcess, kubectl: Any, namespace: str, mcp_server: DemoMCP, tmp_path: Path
) -> None:
    apply(kubectl, namespace, *desk_over(mcp_server))
    agent = wait_for("Ready", lambda: ready(kubectl, "desk", namespace))
    conn = discovered(kubectl, "orders", namespace, "Discovered")
    assert conn is not None
    operator.stop()
    restarted = OperatorProcess(
        operator.kubeconfig, tmp_path / "restarted.log", scope=("--namespace", namespace), env=DISCOVERY_ENV
    ).start()
    try:
        # One reconcile from the listing, one when the new discovery answers.
        wait_for(
            "the Connector reconciled after its rediscovery",
            lambda: queue_drained(restarted) and reconciles(restarted, "Connector") >= 2,
            timeout=60,
        )
        assert restarted.writes_in(namespace) == []
        assert (
            get(kubectl, "connector", "orders", namespace)["metadata"]["resourceVersion"]
            == (conn["metadata"]["resourceVersion"])
        )
        assert (
            get(kubectl, "agent", "desk", namespace)["metadata"]["resourceVersion"]
            == (agent["metadata"]["resourceVersion"])
        )
    finally:
        restarted.stop()
        operator.start()
