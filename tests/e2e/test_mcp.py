"""An MCP server as a pod, its tools discovered and called for real on the local cluster's node.

What `make dev` runs for the order-desk sample, in the test's namespace: the demo MCP server (the MCP
SDK's own server, demo/mcp.yaml) behind a Service, the samples' orders Connector and order-desk
Agent, and the operator in the cluster from its image (it reaches the server by its Service name, as
it would in production). Requests come from a client pod through the Agent's Service; the agent pods
call the MCP server through its Service. Restarting the server's pod loses every MCP session the
agents held: the next calls must succeed again without a restart of the agents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.e2e.demo import demo_mcp
from tests.e2e.in_cluster import deploy_operator
from tests.e2e.traffic import TrafficClient, access_key, condition, get_json, wait_for, wait_ready
from tests.integration.conftest import Kubectl
from tests.unit.samples import load_sample

TOKEN = "e2e-mcp-token-4f2a9c"
QUESTION = "Where is order A-1001?"


def _in(namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    doc["metadata"]["namespace"] = namespace
    return doc


def _ask(kubectl: Kubectl, ns: str, image: str, key: str, count: int = 6) -> Any:
    return TrafficClient(
        kubectl, ns, image, "order-desk", api_key=key, count=count, threads=1, pause_seconds=0.2, message=QUESTION
    ).run()


def test_order_desk_discovers_and_calls_the_mcp_server_pod_and_survives_its_restart(
    kubectl: Kubectl, own_namespace: str, images: dict[str, str], tmp_path: Path
) -> None:
    ns = own_namespace
    deploy_operator(kubectl, tmp_path, ns, images)
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(demo_mcp(ns, images["RUNTIME_IMAGE"], TOKEN)), check=True)
    kubectl("rollout", "status", "deploy/demo-mcp", "-n", ns, "--timeout=180s", check=True, timeout=200)

    connector = _in(ns, load_sample("orders-mcp-connector.yaml"))
    connector["spec"]["endpoint"] = f"http://demo-mcp.{ns}.svc:8080/mcp"
    agent = _in(ns, load_sample("order-desk-agent.yaml"))
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([connector, agent]), check=True)

    def discovered() -> dict[str, Any] | None:
        conn = get_json(kubectl, "connector", "orders", "-n", ns)
        return conn if condition(conn, "ToolsDiscovered").get("status") == "True" else None

    conn = wait_for(discovered, 120, "the orders Connector's tools discovered")
    assert [t["name"] for t in conn["status"]["tools"]] == ["lookup_order", "check_stock"]
    wait_ready(kubectl, ns, "order-desk")
    key = access_key(kubectl, ns, "order-desk")

    first = _ask(kubectl, ns, images["RUNTIME_IMAGE"], key)
    assert first.codes == {"200": first.total}, first
    (reply,) = first.replies
    assert "Order A-1001" in reply and '"status": "shipped"' in reply, first.replies

    # A new server pod knows none of the sessions the agent pods opened.
    kubectl("delete", "pod", "-n", ns, "-l", "app.kubernetes.io/name=demo-mcp", "--wait=true", check=True, timeout=120)
    kubectl("rollout", "status", "deploy/demo-mcp", "-n", ns, "--timeout=180s", check=True, timeout=200)
    again = _ask(kubectl, ns, images["RUNTIME_IMAGE"], key)
    assert again.codes == {"200": again.total}, again
    assert set(again.replies) == {reply}, again.replies
