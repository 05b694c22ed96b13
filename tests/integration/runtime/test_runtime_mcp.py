"""Tools of `type: mcp` Connectors against the demo MCP server (the SDK's own server side, a real
process): structured results, isError, auth, a dead or restarted server, retries that must not
repeat a side effect, the legacy HTTP+SSE transport, metrics and a clean shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.crm import FakeCRM
from tests.fakes.llm import FakeLLM
from tests.fakes.mcp import DemoMCP, start_demo_mcp
from tests.fakes.runtime import crm_connector, llm_config, rules_config, runtime_client, wait_until

pytestmark = pytest.mark.integration

TOKEN = "demo-mcp-token-6f1c2a"  # what the server accepts
# Tools as the operator writes them after discovery: the server's schemas, its read-only hints.
LOOKUP_ORDER = {
    "name": "lookup_order",
    "description": "Look up an order by its id (A-1001): status and expected delivery date.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    "idempotent": True,
}
CREATE_TICKET = {
    "name": "create_ticket",
    "description": "Open a support ticket; returns its number.",
    "parameters": {
        "type": "object",
        "properties": {"subject": {"type": "string"}, "priority": {"type": "string", "default": "normal"}},
        "required": ["subject"],
    },
}
CHECK_STOCK = {
    "name": "check_stock",
    "description": "Units in stock for a SKU (KB-01, MS-02).",
    "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
    "idempotent": True,
}
RULES = [
    {
        "pattern": r"order (?P<id>[A-Z]-\d+)",
        "tool": "lookup_order",
        "arguments": {"order_id": "{id}"},
        "reply": "Order {tool_result[orderId]} is {tool_result[status]}.",
    },
    {"pattern": r"ticket: (?P<s>.+)", "tool": "create_ticket", "arguments": {"subject": "{s}"}},
    {"pattern": r"stock (?P<sku>\S+)", "tool": "check_stock", "arguments": {"sku": "{sku}"}},
    {"pattern": "customer (?P<email>\\S+@\\S+)", "tool": "lookup_customer", "arguments": {"email": "{email}"}},
]


def secret_dir(tmp_path: Path, token: str = TOKEN) -> str:
    directory = tmp_path / "orders-creds"
    directory.mkdir(exist_ok=True)
    (directory / "token").write_text(token)
    return str(directory)


def mcp_connector(server: DemoMCP, secrets: str, **overrides: Any) -> dict[str, Any]:
    connector = {
        "name": "orders",
        "type": "mcp",
        "endpoint": server.url,
        "auth": {"type": "bearer", "secretDir": secrets},
        "tools": [LOOKUP_ORDER, CREATE_TICKET, CHECK_STOCK],
        "timeoutSeconds": 10,
        "retries": 2,
    }
    connector.update(overrides)
    return connector


def orders_config(server: DemoMCP, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    config = rules_config(connectors=[mcp_connector(server, secret_dir(tmp_path), **overrides)])
    config["model"]["rules"] = RULES
    return config


@pytest.fixture
def demo() -> Iterator[DemoMCP]:
    with start_demo_mcp(token=TOKEN) as server:
        yield server


async def ask(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    response = await client.post("/v1/sessions/s/messages", json={"content": text})
    assert response.status_code == 200, response.text
    return response.json()


def tool_metric(text: str, tool: str, outcome: str) -> float:
    line = f'agent_tool_calls_total{{outcome="{outcome}",tool="{tool}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0][len(line) :]) if found else 0.0


async def test_the_model_calls_an_mcp_tool_and_reads_its_structured_result(
    demo: DemoMCP, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    # The model-visible name differs from the server's: tools/call must use remoteName.
    find_order = {**LOOKUP_ORDER, "name": "find_order", "remoteName": "lookup_order"}
    fake_llm.respond_with_tool_call(r"order (?P<id>[A-Z]-\d+)", "find_order", {"order_id": "{id}"})
    connector = mcp_connector(demo, secret_dir(tmp_path), tools=[find_order, CHECK_STOCK])
    async with runtime_client(llm_config(fake_llm, connectors=[connector])) as client:
        body = await ask(client, "where is order A-1001?")
        metrics = (await client.get("/metrics")).text
    assert body["toolCalls"] == [{"name": "find_order", "arguments": {"order_id": "A-1001"}, "outcome": "success"}]
    offered = {t["function"]["name"]: t["function"] for t in fake_llm.requests[0]["tools"]}
    assert offered["find_order"]["parameters"] == LOOKUP_ORDER["parameters"]
    tool_message = fake_llm.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"]) == {"orderId": "A-1001", "status": "shipped", "eta": "2026-12-03"}
    assert body["reply"] == f"Tool result: {tool_message['content']}"
    assert tool_metric(metrics, "find_order", "success") == 1


async def test_is_error_is_an_explained_failure(demo: DemoMCP, fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.respond_with_tool_call(r"stock (?P<sku>\S+)", "check_stock", {"sku": "{sku}"})
    connector = mcp_connector(demo, secret_dir(tmp_path))
    async with runtime_client(llm_config(fake_llm, connectors=[connector])) as client:
        body = await ask(client, "stock ZZ-99")
        ok = await ask(client, "stock KB-01")
        metrics = (await client.get("/metrics")).text
    assert body["toolCalls"][0]["outcome"] == "tool_error"
    error = json.loads(fake_llm.requests[1]["messages"][-1]["content"])["error"]
    assert "unknown SKU ZZ-99" in error, error
    assert ok["toolCalls"][0]["outcome"] == "success"
    assert "14 units of KB-01 in stock" in ok["reply"]
    assert tool_metric(metrics, "check_stock", "tool_error") == 1
    assert tool_metric(metrics, "check_stock", "success") == 1


async def test_concurrent_calls_share_one_session(demo: DemoMCP, tmp_path: Path) -> None:
    async with runtime_client(orders_config(demo, tmp_path)) as client:
        # Four first calls at once open one session between them, and later calls reuse it.
        first = await asyncio.gather(*(ask(client, f"order A-100{1 + i % 2}") for i in range(4)))
        again = await ask(client, "order A-1001 please")
        connector = client.app.state.runtime.agent.tools.connectors["orders"]  # type: ignore[attr-defined]
        assert connector.sessions_opened == 1
    assert [body["reply"] for body in first] == ["Order A-1001 is shipped.", "Order A-1002 is packing."] * 2
    assert again["reply"] == "Order A-1001 is shipped."


async def test_a_wrong_token_is_auth_error_and_appears_in_no_log(demo: DemoMCP, tmp_path: Path, spawn_runtime) -> None:
    wrong = "wrong-token-9d8e7f6a5b"
    config = rules_config(connectors=[mcp_connector(demo, secret_dir(tmp_path, wrong))])
    config["model"]["rules"] = RULES
    runtime = spawn_runtime(config)
    response = httpx.post(f"{runtime.url}/v1/sessions/s/messages", json={"content": "order A-1001"}, timeout=30)
    body = response.json()
    assert body["toolCalls"][0]["outcome"] == "auth_error"
    assert "refused the connector's credentials (HTTP 401)" in body["reply"]
    metrics = httpx.get(f"{runtime.url}/metrics").text
    assert tool_metric(metrics, "lookup_order", "auth_error") == 1
    assert runtime.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once drained
    logs = runtime.logs()
    assert "tool call failed" in logs  # the log is there, and it is about this call
    for secret in (wrong, TOKEN):
        assert secret not in logs
        assert secret not in response.text


async def test_an_oauth2_token_the_server_refuses_is_fetched_again_once(tmp_path: Path) -> None:
    # The fake CRM is the OAuth token endpoint and numbers its tokens; the MCP server accepts only
    # the second, so the first call succeeds only through the one refetch after a 401.
    with FakeCRM(auth="oauth2") as crm, start_demo_mcp(token="oauth-token-2") as server:
        secrets = crm.write_secret_dir(tmp_path / "oauth")  # type: ignore[attr-defined]
        auth = {"type": "oauth2ClientCredentials", "secretDir": secrets, "tokenURL": crm.token_url}  # type: ignore[attr-defined]
        config = rules_config(connectors=[mcp_connector(server, secrets, auth=auth)])
        config["model"]["rules"] = RULES
        async with runtime_client(config) as client:
            assert (await ask(client, "order A-1001"))["toolCalls"][0]["outcome"] == "success"
            assert (await ask(client, "stock KB-01"))["toolCalls"][0]["outcome"] == "success"
        assert crm.token_issues == 2  # type: ignore[attr-defined]


async def test_a_stopped_server_is_an_explained_answer_and_http_tools_keep_working(
    demo: DemoMCP, fake_crm: FakeCRM, tmp_path: Path
) -> None:
    orders = mcp_connector(demo, secret_dir(tmp_path), timeoutSeconds=20)
    config = rules_config(connectors=[orders, crm_connector(fake_crm)])
    config["model"]["rules"] = RULES
    async with runtime_client(config) as client:
        assert (await ask(client, "order A-1001"))["toolCalls"][0]["outcome"] == "success"
        demo.stop()
        down = await ask(client, "order A-1001")
        # unreachable, not timeout: a refused connection is answered at once, not after 20 s.
        assert down["toolCalls"][0]["outcome"] == "unreachable", down
        assert "orders did not answer" in down["reply"]
        crm = await ask(client, "customer ada@example.com")
        assert crm["toolCalls"][0]["outcome"] == "success"
        outcomes = [(await ask(client, "order A-1001"))["toolCalls"][0]["outcome"] for _ in range(3)]
        assert outcomes[-1] == "circuit_open", outcomes
        metrics = (await client.get("/metrics")).text
    assert tool_metric(metrics, "lookup_order", "unreachable") >= 1
    assert tool_metric(metrics, "lookup_order", "circuit_open") >= 1
    assert tool_metric(metrics, "lookup_customer", "success") == 1


@pytest.mark.parametrize(
    ("transport", "era", "sessions"),
    [
        ("streamable-http", "2025", 2),  # the restarted server answers 404 for the old session
        ("sse", "2026", 2),  # the event stream closed with the server
        ("streamable-http", "2026", 1),  # no session state to lose: the same client keeps working
    ],
)
async def test_a_server_restart_mid_conversation_costs_one_reconnect(
    tmp_path: Path, transport: str, era: str, sessions: int
) -> None:
    with start_demo_mcp(token=TOKEN, transport=transport, era=era) as server:
        async with runtime_client(orders_config(server, tmp_path, retries=0)) as client:
            connector = client.app.state.runtime.agent.tools.connectors["orders"]  # type: ignore[attr-defined]
            assert (await ask(client, "order A-1001"))["reply"] == "Order A-1001 is shipped."
            server.restart()
            # retries=0: only the free reopen after a lost session can make this succeed.
            after = await ask(client, "order A-1002")
            assert after["toolCalls"][0]["outcome"] == "success", after
            assert after["reply"] == "Order A-1002 is packing."
            assert (await ask(client, "order A-1001"))["toolCalls"][0]["outcome"] == "success"
            assert connector.sessions_opened == sessions


async def test_create_ticket_is_not_repeated_after_a_timeout(tmp_path: Path) -> None:
    with start_demo_mcp(token=TOKEN, delay=3) as server:
        async with runtime_client(orders_config(server, tmp_path, timeoutSeconds=1, retries=2)) as client:
            body = await ask(client, "ticket: printer on fire")
            assert body["toolCalls"][0]["outcome"] == "timeout"
            assert "orders did not answer in time" in body["reply"]
            wait_until(lambda: server.tickets() >= 1, what="the ticket the server opened")
            stock = await ask(client, "stock KB-01")  # read-only: retried, still too slow
            assert stock["toolCalls"][0]["outcome"] == "timeout"
        assert server.tickets() == 1, server.output()


async def test_the_legacy_sse_transport(tmp_path: Path) -> None:
    with start_demo_mcp(token=TOKEN, transport="sse") as server:
        assert server.url.endswith("/sse")
        async with runtime_client(orders_config(server, tmp_path)) as client:
            order = await ask(client, "order A-1001")
            stock = await ask(client, "stock NOPE-1")
            ticket = await ask(client, "ticket: broken keyboard")
        assert server.tickets() == 1
    assert order["reply"] == "Order A-1001 is shipped."
    assert stock["toolCalls"][0]["outcome"] == "tool_error"
    assert "unknown SKU NOPE-1" in stock["reply"]
    assert ticket["toolCalls"][0]["outcome"] == "success"


async def test_stopping_the_runtime_closes_the_session(tmp_path: Path) -> None:
    with start_demo_mcp(token=TOKEN, era="2025") as server:  # a session the server keeps until told
        async with runtime_client(orders_config(server, tmp_path)) as client:
            await ask(client, "order A-1001")
            connector = client.app.state.runtime.agent.tools.connectors["orders"]  # type: ignore[attr-defined]
            session = connector.session
            assert session is not None and session.usable
        assert session.ended and not session.usable


async def test_the_runtime_process_closes_its_mcp_session_cleanly(demo: DemoMCP, tmp_path: Path, spawn_runtime) -> None:
    runtime = spawn_runtime(orders_config(demo, tmp_path))
    body = httpx.post(f"{runtime.url}/v1/sessions/s/messages", json={"content": "order A-1001"}, timeout=30).json()
    assert body["reply"] == "Order A-1001 is shipped."
    assert runtime.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once drained
    logs = runtime.logs()
    assert "mcp session opened" in logs
    for noise in ("Task was destroyed", "Unclosed", "never awaited", "Traceback", TOKEN):
        assert noise not in logs, logs
