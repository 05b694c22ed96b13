"""Agents as tools (Connector `type: agent`): the API model, loop detection, resolution from the
operator's view and the runtime config the caller's pods get."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from agentfleet_contract.runtime_config import ConnectorConfig, RuntimeConfig
from agentfleet_operator import crdgen
from agentfleet_operator.api import AgentSpec, ConnectorSpec, reasons
from agentfleet_operator.api.kinds import ALL_KINDS
from agentfleet_operator.builders import agent_children as children
from agentfleet_operator.builders.agent_tools import default_tool_name, find_loop
from agentfleet_operator.builders.inputs import ResolvedAgent
from agentfleet_operator.builders.revision import revision_hash
from agentfleet_operator.builders.runtime_config import build_runtime_config, revision_inputs, secret_mounts
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.unit.store_view import StoreView

NS = "support"


def _rules_agent(*connectors: str, access: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"provider": "rules", "name": "rules", "rules": [{"pattern": "x", "reply": "y"}]},
        "prompt": {"system": "hi"},
        "connectors": [{"name": c} for c in connectors],
    }
    if access:
        spec["access"] = access
    return spec


def _agent_connector(target: str, **more: Any) -> dict[str, Any]:
    return {"type": "agent", "agentRef": {"name": target}, **more}


_View = StoreView  # its namespace, "support", is NS

# The API model ------------------------------------------------------------------------------------


def test_an_agent_connector_needs_no_endpoint_nor_tools() -> None:
    spec = ConnectorSpec.model_validate(_agent_connector("billing"))
    assert spec.agent_ref is not None and spec.agent_ref.name == "billing"
    assert spec.endpoint is None and spec.tools == [] and spec.auth.type == "none"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"type": "agent"}, "spec.agentRef is required"),
        (_agent_connector("b", endpoint="http://b:8080"), "spec.endpoint must not be set"),
        (_agent_connector("b", auth={"type": "bearer", "secretRef": {"name": "s"}}), "spec.auth.type must be none"),
        (_agent_connector("b", tools=[{"name": "a"}, {"name": "c"}]), "at most one tool"),
        ({"type": "http", "tools": [{"name": "a"}]}, "spec.endpoint is required unless spec.type is agent"),
    ],
)
def test_the_model_refuses_what_the_crd_refuses(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConnectorSpec.model_validate(doc)


def _connector_rules() -> list[dict[str, str]]:
    info = next(i for i in ALL_KINDS if i.kind == "Connector")
    spec = crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["x-kubernetes-validations"]


def test_the_crd_carries_the_agent_rules_naming_their_fields() -> None:
    by_path: dict[str, list[str]] = {}
    for rule in _connector_rules():
        by_path.setdefault(rule["fieldPath"], []).append(rule["message"])
    assert any("agentRef is required when spec.type is agent" in m for m in by_path[".agentRef"])
    assert any("spec.endpoint is required unless spec.type is agent" in m for m in by_path[".endpoint"])
    assert any("must be none when spec.type is agent" in m for m in by_path[".auth.type"])
    assert any("at most one tool" in m for m in by_path[".tools"])
    assert any("only name and description" in m for m in by_path[".tools"])
    info = next(i for i in ALL_KINDS if i.kind == "Connector")
    props = crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "agent" in props["properties"]["type"]["enum"]
    assert "endpoint" not in props.get("required", [])  # optional now, the rule above requires it


def test_default_tool_names_are_valid_tool_names() -> None:
    assert default_tool_name("billing") == "ask_billing"
    assert default_tool_name("support-bot.v2") == "ask_support_bot_v2"


# Loop detection -----------------------------------------------------------------------------------


def test_find_loop_names_the_shortest_loop_through_the_start() -> None:
    graph = {"a": ["b"], "b": ["c", "a"], "c": ["a"]}
    assert find_loop("a", lambda n: graph.get(n, [])) == ["a", "b", "a"]
    assert find_loop("c", lambda n: graph.get(n, [])) == ["c", "a", "b", "c"]
    assert find_loop("s", lambda n: ["s"]) == ["s", "s"]
    # A loop elsewhere (b <-> c) that a reaches is not a's loop, and the walk ends.
    elsewhere = {"a": ["b"], "b": ["c"], "c": ["b"]}
    assert find_loop("a", lambda n: elsewhere.get(n, [])) is None


def _reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, []))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, []))
    return seen


NODES = st.sampled_from("abcdef")


@given(st.dictionaries(NODES, st.lists(NODES, max_size=4), max_size=6), NODES)
def test_find_loop_finds_a_real_loop_exactly_when_there_is_one(graph: dict[str, list[str]], start: str) -> None:
    loop = find_loop(start, lambda n: graph.get(n, []))
    if start not in _reachable(graph, start):
        assert loop is None
        return
    assert loop is not None and loop[0] == start and loop[-1] == start
    for here, there in itertools.pairwise(loop):
        assert there in graph.get(here, []), (loop, graph)
    assert len(set(loop[1:])) == len(loop) - 1  # each Agent once: the loop, not a walk around it


# Resolution from the operator's view ------------------------------------------------------------------


def test_an_agent_connector_resolves_to_the_targets_service_and_generated_key() -> None:
    view = (
        _View()
        .agent("support-bot", _rules_agent("billing-desk"))
        .agent("billing", _rules_agent())
        .connector("billing-desk", _agent_connector("billing"))
        .secret("billing-access", ["apiKey"], digest="hb")
        .secret("support-bot-access", ["apiKey"])
    )
    res = view.resolve("support-bot")
    assert res.problems == []
    (connector,) = res.connectors
    assert connector.target is not None
    assert connector.target.endpoint == "http://billing.support.svc:8080"
    assert (connector.target.access_secret, connector.target.key) == ("billing-access", "apiKey")
    assert res.secret_hashes["billing-access"] == "hb"
    assert {("Agent", NS, "billing"), ("Secret", NS, "billing-access"), ("Connector", NS, "billing-desk")} <= (
        res.dependencies
    )


def test_the_targets_own_access_secret_is_the_one_presented() -> None:
    view = (
        _View()
        .agent("support-bot", _rules_agent("billing-desk"))
        .agent("billing", _rules_agent(access={"apiKeySecretRef": {"name": "billing-keys"}}))
        .connector("billing-desk", _agent_connector("billing"))
        .secret("billing-keys", ["team-b", "team-a"])
        .secret("support-bot-access", ["apiKey"])
    )
    (connector,) = view.resolve("support-bot").connectors
    assert connector.target is not None
    assert (connector.target.access_secret, connector.target.key) == ("billing-keys", "team-a")


def test_a_missing_target_or_key_is_a_problem_that_names_it() -> None:
    view = _View().agent("support-bot", _rules_agent("billing-desk")).connector("billing-desk", _agent_connector("b"))
    res = view.resolve("support-bot")
    assert [(p.area, p.reason) for p in res.problems] == [("connectors", reasons.AGENT_NOT_FOUND)]
    assert "Agent b not found" in res.problems[0].message
    assert ("Agent", NS, "b") in res.dependencies  # created later: the caller looks again
    view.agent("b", _rules_agent())
    res = view.resolve("support-bot")
    assert [p.reason for p in res.problems] == [reasons.SECRET_NOT_FOUND]
    assert "b-access" in res.problems[0].message
    view.secret("b-access", ["apiKey"])
    assert view.resolve("support-bot").problems == []


def test_a_tool_filter_picks_the_agent_tool_by_its_name() -> None:
    view = (
        _View()
        .agent("a", {**_rules_agent(), "connectors": [{"name": "to-b", "tools": ["ask_billing"]}]})
        .agent("b", _rules_agent())
        .connector("to-b", _agent_connector("b"))
        .secret("b-access", ["apiKey"])
    )
    assert [p.reason for p in view.resolve("a").problems] == [reasons.TOOL_NOT_FOUND]
    view.connector("to-b", _agent_connector("b", tools=[{"name": "ask_billing"}]))
    assert view.resolve("a").problems == []


def test_a_loop_is_refused_on_every_agent_on_it() -> None:
    view = (
        _View()
        .agent("support-bot", _rules_agent("to-billing"))
        .agent("billing", _rules_agent("to-support"))
        .agent("frontdesk", _rules_agent("to-billing"))
        .connector("to-billing", _agent_connector("billing"))
        .connector("to-support", _agent_connector("support-bot"))
        .secret("billing-access", ["apiKey"])
        .secret("support-bot-access", ["apiKey"])
    )
    for name, loop in (
        ("support-bot", "support-bot → billing → support-bot"),
        ("billing", "billing → support-bot → billing"),
    ):
        res = view.resolve(name)
        assert res.problems[0].reason == reasons.TOOL_LOOP
        assert loop in res.problems[0].message
    # frontdesk asks billing, which is on a loop it is not part of: not frontdesk's problem.
    assert [p.reason for p in view.resolve("frontdesk").problems] == []
    # The loop walk read support-bot's spec: a change there must wake billing.
    assert ("Agent", NS, "support-bot") in view.resolve("billing").dependencies


def test_an_agent_asking_itself_is_a_loop() -> None:
    view = _View().agent("echo", _rules_agent("self")).connector("self", _agent_connector("echo"))
    view.secret("echo-access", ["apiKey"])
    res = view.resolve("echo")
    assert res.problems[0].reason == reasons.TOOL_LOOP and "echo → echo" in res.problems[0].message


# The caller's pods ----------------------------------------------------------------------------------


def _caller(view: _View, digest: str = "hb") -> ResolvedAgent:
    view.secret("billing-access", ["apiKey"], digest=digest)
    res = view.resolve("support-bot")
    assert res.problems == []
    return ResolvedAgent(
        name="support-bot",
        namespace=NS,
        uid="u",
        spec=AgentSpec.model_validate(view.store.agent(NS, "support-bot")["spec"]),  # type: ignore[index]
        image="runtime:1",
        prompt_text=res.prompt_text,
        connectors=tuple(res.connectors),
        access_secret=res.access_secret,
        secret_hashes=res.secret_hashes,
    )


def _billing_view(**connector: Any) -> _View:
    return (
        _View()
        .agent("support-bot", _rules_agent("billing-desk"))
        .agent("billing", _rules_agent())
        .connector("billing-desk", _agent_connector("billing", **connector))
        .secret("support-bot-access", ["apiKey"])
    )


def test_the_runtime_config_calls_the_target_with_its_mounted_key() -> None:
    agent = _caller(_billing_view(timeoutSeconds=30, retries=0))
    config = build_runtime_config(agent, "r1")
    RuntimeConfig.model_validate(config)  # the runtime reads what the operator writes
    (connector,) = config["connectors"]
    assert connector == {
        "name": "billing-desk",
        "type": "agent",
        "endpoint": "http://billing.support.svc:8080",
        "agent": "billing",
        "auth": {
            "type": "bearer",
            "secretDir": "/var/run/agentfleet/secrets/billing-access",
            "tokenFile": "/var/run/agentfleet/secrets/billing-access/apiKey",
        },
        "tools": [
            {
                "name": "ask_billing",
                "description": "Ask the billing agent; it answers in plain text.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "message": {"type": "string", "description": "What to ask the agent, in plain words."}
                    },
                    "required": ["message"],
                },
            }
        ],
        "timeoutSeconds": 30,
        "retries": 0,
    }
    assert ConnectorConfig.model_validate(connector).agent == "billing"
    # Only the key presented is mounted from the target's Secret; the caller's own is mounted whole.
    mounts = secret_mounts(agent)
    assert mounts["billing-access"] == {"apiKey"} and mounts["support-bot-access"] == set()


def test_an_agent_connector_passes_its_circuit_breaker_thresholds() -> None:
    agent = _caller(_billing_view(circuitBreaker={"failures": 2, "openSeconds": 5}))
    (connector,) = build_runtime_config(agent, "r1")["connectors"]
    assert connector["circuitBreaker"] == {"failures": 2, "openSeconds": 5}
    assert ConnectorConfig.model_validate(connector).circuit_breaker is not None


def test_a_tool_override_names_and_describes_the_one_tool() -> None:
    agent = _caller(_billing_view(tools=[{"name": "billing_help", "description": "Invoices and refunds"}]))
    (tool,) = build_runtime_config(agent, "r1")["connectors"][0]["tools"]
    assert (tool["name"], tool["description"]) == ("billing_help", "Invoices and refunds")
    assert tool["parameters"]["required"] == ["message"]


def test_a_rotated_target_key_is_a_new_revision_and_egress_reaches_the_target() -> None:
    view = _billing_view()
    before, after = _caller(view, "k1"), _caller(view, "k2")

    def revision(agent: ResolvedAgent) -> str:
        return revision_hash(agent.image, revision_inputs(agent), agent.secret_hashes)

    assert revision(before) != revision(after)
    policy = children.network_policy(before)
    # DNS, then the target's pods (of this namespace) on the runtime's port, and nothing else.
    assert policy["spec"]["egress"][1:] == [
        {"to": [{"podSelector": {"matchLabels": {"agentfleet.dev/agent": "billing"}}}],
         "ports": [{"protocol": "TCP", "port": 8080}]},
    ]  # fmt: skip


def test_a_shared_access_secret_stays_mounted_whole() -> None:
    # Both Agents accept the keys of one Secret: the caller's mount must keep every key.
    shared = {"apiKeySecretRef": {"name": "team-keys"}}
    view = (
        _View()
        .agent("support-bot", _rules_agent("billing-desk", access=shared))
        .agent("billing", _rules_agent(access=shared))
        .connector("billing-desk", _agent_connector("billing"))
        .secret("team-keys", ["apiKey", "other"])
        .secret("billing-access", ["apiKey"])
    )
    res = view.resolve("support-bot")
    agent = ResolvedAgent(
        name="support-bot",
        namespace=NS,
        uid="u",
        spec=AgentSpec.model_validate(view.store.agent(NS, "support-bot")["spec"]),  # type: ignore[index]
        image="i",
        prompt_text="",
        connectors=tuple(res.connectors),
        access_secret=res.access_secret,
        secret_hashes=res.secret_hashes,
    )
    assert secret_mounts(agent)["team-keys"] == set()
