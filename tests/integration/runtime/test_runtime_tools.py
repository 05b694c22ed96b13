"""Connector tools against the fake CRM: every auth type, OAuth token caching, the circuit
breaker, argument validation and webhooks."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from agentfleet_runtime.tools.breaker import BreakerState

from tests.fakes.crm import DEFAULT_CREDENTIALS, FakeCRM
from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import crm_connector, llm_config, rules_config, runtime_client

ASK = "please find customer ada@example.com"


def auth_block(kind: str, secret_dir: str, crm: FakeCRM) -> dict[str, Any]:
    if kind == "none":
        return {"type": "none"}
    if kind == "oauth2":
        return {
            "type": "oauth2ClientCredentials",
            "secretDir": secret_dir,
            "tokenURL": crm.token_url,
            "scopes": ["customers.read"],
        }
    block: dict[str, Any] = {"type": kind, "secretDir": secret_dir}
    if kind == "apiKey":
        block["header"] = "X-CRM-Key"
    return block


@pytest.mark.parametrize("kind", ["none", "apiKey", "bearer", "basic", "oauth2"])
async def test_tool_call_with_each_auth_type(tmp_path: Path, kind: str) -> None:
    with FakeCRM(auth=kind, api_key_header="X-CRM-Key") as crm:
        secret_dir = crm.write_secret_dir(tmp_path / "crm-creds")  # type: ignore[attr-defined]
        config = rules_config(connectors=[crm_connector(crm, auth_block(kind, secret_dir, crm))])  # type: ignore[arg-type]
        async with runtime_client(config) as client:
            response = await client.post("/v1/sessions/s/messages", json={"content": ASK})
        assert response.status_code == 200
        body = response.json()
        assert body["reply"] == "Customer Ada Lovelace is on the gold tier."
        assert body["toolCalls"] == [
            {"name": "lookup_customer", "arguments": {"email": "ada@example.com"}, "outcome": "success"}
        ]
        (request,) = crm.requests  # type: ignore[attr-defined]
        assert request["query"] == {"email": ["ada@example.com"]}
        headers = {k.lower(): v for k, v in request["headers"].items()}
        if kind == "apiKey":
            assert headers["x-crm-key"] == DEFAULT_CREDENTIALS["apiKey"]
        if kind == "basic":
            assert headers["authorization"].startswith("Basic ")
            assert base64.b64decode(headers["authorization"][6:]).decode() == "crm-user:crm-password-789"
        if kind == "oauth2":
            assert crm.scopes_requested == ["customers.read"]  # type: ignore[attr-defined]


async def test_wrong_credentials_degrade_the_answer_without_leaking_them(tmp_path: Path) -> None:
    with FakeCRM(auth="bearer") as crm:
        secret_dir = tmp_path / "creds"
        secret_dir.mkdir()
        (secret_dir / "token").write_text("not-the-right-token")
        config = rules_config(connectors=[crm_connector(crm, {"type": "bearer", "secretDir": str(secret_dir)})])  # type: ignore[arg-type]
        async with runtime_client(config) as client:
            body = (await client.post("/v1/sessions/s/messages", json={"content": ASK})).json()
    assert "HTTP 401" in body["reply"]
    assert "not-the-right-token" not in str(body)
    assert body["toolCalls"][0]["outcome"] == "http_error"


async def test_missing_secret_key_is_named_not_shown(tmp_path: Path) -> None:
    with FakeCRM(auth="basic") as crm:
        secret_dir = tmp_path / "creds"
        secret_dir.mkdir()
        (secret_dir / "username").write_text("crm-user")
        config = rules_config(connectors=[crm_connector(crm, {"type": "basic", "secretDir": str(secret_dir)})])  # type: ignore[arg-type]
        async with runtime_client(config) as client:
            body = (await client.post("/v1/sessions/s/messages", json={"content": ASK})).json()
    assert "secret key 'password' is missing" in body["reply"]
    assert crm.hits["/customers"] == 0  # type: ignore[attr-defined]


async def test_oauth2_token_is_cached_and_refetched_once_after_a_401(tmp_path: Path) -> None:
    with FakeCRM(auth="oauth2") as crm:
        secret_dir = crm.write_secret_dir(tmp_path / "creds")  # type: ignore[attr-defined]
        config = rules_config(connectors=[crm_connector(crm, auth_block("oauth2", secret_dir, crm))])  # type: ignore[arg-type]
        async with runtime_client(config) as client:
            for _ in range(2):
                response = await client.post("/v1/sessions/s/messages", json={"content": ASK})
                assert response.json()["toolCalls"][0]["outcome"] == "success"
            assert crm.token_issues == 1  # type: ignore[attr-defined]
            crm.revoke_tokens()  # type: ignore[attr-defined]
            response = await client.post("/v1/sessions/s/messages", json={"content": ASK})
            assert response.json()["toolCalls"][0]["outcome"] == "success"
            assert crm.token_issues == 2  # type: ignore[attr-defined]


async def test_dead_crm_opens_the_circuit_and_later_calls_do_not_reach_it(fake_crm: FakeCRM) -> None:
    fake_crm.mode = "down"
    config = rules_config(connectors=[crm_connector(fake_crm, retries=0)])
    async with runtime_client(config) as client:
        breaker = client.app.state.runtime.agent.tools.connectors["crm"].breaker  # type: ignore[attr-defined]
        replies = []
        for _ in range(8):
            body = (await client.post("/v1/sessions/s/messages", json={"content": ASK})).json()
            replies.append(body)
        assert breaker.state is BreakerState.OPEN
        assert fake_crm.hits["/customers"] == breaker.failure_threshold
        assert [r["toolCalls"][0]["outcome"] for r in replies[-3:]] == ["circuit_open"] * 3
        assert "unavailable right now" in replies[-1]["reply"]
        text = (await client.get("/metrics")).text
        assert 'agent_tool_calls_total{outcome="circuit_open",tool="lookup_customer"} 3.0' in text


def _tool_calls(metrics: str, outcome: str) -> float:
    line = f'agent_tool_calls_total{{outcome="{outcome}",tool="lookup_customer"}} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0][len(line) :]) if found else 0.0


def test_the_connectors_breaker_thresholds_open_and_close_its_circuit(spawn_runtime) -> None:
    """circuitBreaker {failures: 2, openSeconds: 1} in a real runtime's config file: two refused
    connections open the circuit (the default would take five), the third call never leaves, and
    once the CRM is back the trial call after the open second closes it again."""
    crm = FakeCRM().start()
    port = crm.port
    connector = crm_connector(crm, retries=0, circuitBreaker={"failures": 2, "openSeconds": 1})
    crm.stop()  # nothing listens on its port: every connection is refused
    runtime = spawn_runtime(rules_config(connectors=[connector]))

    def ask() -> str:
        body = httpx.post(f"{runtime.url}/v1/sessions/s/messages", json={"content": ASK}, timeout=30).json()
        return body["toolCalls"][0]["outcome"]

    assert [ask(), ask(), ask()] == ["unreachable", "unreachable", "circuit_open"]
    with FakeCRM(port=port) as revived:
        deadline = time.monotonic() + 15  # open for one second, then one trial goes out
        while (outcome := ask()) == "circuit_open" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert outcome == "success"
        assert ask() == "success"  # closed: calls go straight through
        assert revived.hits["/customers"] == 2  # type: ignore[attr-defined]
    metrics = httpx.get(f"{runtime.url}/metrics", timeout=10).text
    assert (_tool_calls(metrics, "unreachable"), _tool_calls(metrics, "success")) == (2, 2)
    assert _tool_calls(metrics, "circuit_open") >= 1


async def test_retries_do_not_hide_a_recovering_crm(fake_crm: FakeCRM) -> None:
    config = rules_config(connectors=[crm_connector(fake_crm, retries=2)])
    async with runtime_client(config) as client:
        fake_crm.mode = "down"
        body = (await client.post("/v1/sessions/s/messages", json={"content": ASK})).json()
        assert body["toolCalls"][0]["outcome"] == "http_error"
        assert fake_crm.hits["/customers"] == 3  # first try + 2 retries on 503
        fake_crm.mode = "ok"
        body = (await client.post("/v1/sessions/s/messages", json={"content": ASK})).json()
        assert body["toolCalls"][0]["outcome"] == "success"


async def test_invalid_arguments_never_reach_the_crm(fake_llm: FakeLLM, fake_crm: FakeCRM) -> None:
    fake_llm.respond_with_tool_call(r"customer (?P<who>\S+)", "lookup_customer", {"who": "{who}"})
    config = llm_config(fake_llm, connectors=[crm_connector(fake_crm)])
    async with runtime_client(config) as client:
        body = (await client.post("/v1/sessions/s/messages", json={"content": "customer ada"})).json()
    assert body["toolCalls"][0]["outcome"] == "invalid_arguments"
    assert fake_crm.hits["/customers"] == 0
    tool_message = fake_llm.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "invalid arguments" in tool_message["content"]


async def test_llm_tool_loop_and_streamed_tool_calls(fake_llm: FakeLLM, fake_crm: FakeCRM) -> None:
    fake_llm.respond_with_tool_call(r"customer (?P<email>\S+@\S+)", "lookup_customer", {"email": "{email}"})
    config = llm_config(fake_llm, connectors=[crm_connector(fake_crm)])
    async with runtime_client(config) as client:
        plain = await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": ASK}]})
        streamed = await client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": ASK}], "stream": True}
        )
    assert "Ada Lovelace" in plain.json()["choices"][0]["message"]["content"]
    events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert "Ada Lovelace" in text
    assert fake_crm.hits["/customers"] == 2
    assert fake_llm.requests[0]["tools"][0]["function"]["name"] == "lookup_customer"


async def test_tool_step_limit_forces_an_answer(fake_llm: FakeLLM, fake_crm: FakeCRM) -> None:
    fake_llm.respond_with_tool_call(r"customer (?P<email>\S+@\S+)", "lookup_customer", {"email": "{email}"})
    # The fake asks for the tool whenever it is offered and the user message matches; with no step left
    # it must not be offered, and the model's text is the answer.
    config = llm_config(fake_llm, connectors=[crm_connector(fake_crm)])
    config["model"]["maxToolSteps"] = 0
    async with runtime_client(config) as client:
        response = await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": ASK}]})
    assert response.status_code == 200
    assert "tools" not in fake_llm.requests[0]
    assert fake_crm.hits["/customers"] == 0
    # The answer is forced: one model call without tools, and its text (the fake echoes) is the reply.
    choice = response.json()["choices"][0]
    assert len(fake_llm.requests) == 1
    assert choice["message"]["content"] == f"Echo: {ASK}" and not choice["message"].get("tool_calls"), choice
    assert choice["finish_reason"] == "stop", choice


async def test_webhook_posts_the_arguments_as_json(fake_crm: FakeCRM) -> None:
    connector = {
        "name": "tickets",
        "type": "webhook",
        "endpoint": fake_crm.base_url,
        "tools": [
            {
                "name": "open_ticket",
                "path": "/tickets",
                "method": "GET",
                "parameters": {"type": "object", "properties": {"summary": {"type": "string"}}},
            }
        ],
    }
    config = rules_config(connectors=[connector])
    config["model"]["rules"] = [
        {
            "pattern": r"ticket: (?P<s>.+)",
            "tool": "open_ticket",
            "arguments": {"summary": "{s}"},
            "reply": "Ticket {tool_result[id]} opened.",
        }
    ]
    async with runtime_client(config) as client:
        body = (await client.post("/v1/sessions/s/messages", json={"content": "ticket: printer on fire"})).json()
    assert body["reply"] == "Ticket 1 opened."
    assert fake_crm.tickets == [{"summary": "printer on fire"}]
    assert fake_crm.requests[0]["method"] == "POST"


async def test_duplicate_tool_names_are_qualified_across_connector_types(fake_crm: FakeCRM) -> None:
    mcp = {
        "name": "docs",
        "type": "mcp",
        "endpoint": "http://127.0.0.1:9/mcp",  # nothing listens on the discard port
        "tools": [{"name": "lookup_customer"}, {"name": "search_docs"}],
        "retries": 0,
    }
    config = rules_config(connectors=[crm_connector(fake_crm), mcp])
    config["model"]["rules"] = [{"pattern": "docs", "tool": "search_docs"}]
    async with runtime_client(config) as client:
        tools = client.app.state.runtime.agent.tools  # type: ignore[attr-defined]
        assert set(tools.tools) == {"crm__lookup_customer", "docs__lookup_customer", "search_docs"}
        body = (await client.post("/v1/sessions/s/messages", json={"content": "search docs"})).json()
    # An mcp connector is called for real (tests/integration/runtime/test_runtime_mcp.py); this one has no server.
    assert body["toolCalls"][0]["outcome"] == "unreachable"
    assert "docs did not answer" in body["reply"]
