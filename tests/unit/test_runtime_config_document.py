"""The runtime config document the operator writes, pinned byte for byte.

Every Agent's revision is the hash of this document (builders/revision.py), and the pods read it
from the revision's ConfigMap. If the builder wrote it differently for the same inputs (a key
added or dropped, 10 written as 10.0), every running Agent would roll to a "new" revision on the
next operator upgrade. The expected files in golden/runtime_config/ were produced by the builder
as it was when this test was written; change them only with a format change you mean to ship.

The cases cover every branch of the builder: the shipped samples, each auth type, narrowed tool
lists, rules with and without tools, every state store shape, absent optional blocks, and an MCP
Connector's discovered tools.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agentfleet_operator.api import AgentSpec, ConnectorSpec, StatePolicySpec
from agentfleet_operator.api.connector import DiscoveredTool
from agentfleet_operator.builders import agent_children as children
from agentfleet_operator.builders import state_store
from agentfleet_operator.builders.inputs import ResolvedAgent, ResolvedConnector, ResolvedState
from agentfleet_operator.builders.revision import revision_hash
from agentfleet_operator.builders.runtime_config import build_runtime_config, revision_inputs

from tests.unit.samples import load_sample

GOLDEN = Path(__file__).resolve().parent / "golden" / "runtime_config"
SECRET_HASHES = {"crm-creds": "h1", "llm-key": "h2", "state-key": "h3", "redis-auth": "h4", "bot-keys": "h5"}


def _spec(edit: Callable[[dict[str, Any]], None] | None = None, sample: str = "support-bot-agent.yaml") -> AgentSpec:
    doc = copy.deepcopy(load_sample(sample)["spec"])
    if edit:
        edit(doc)
    return AgentSpec.model_validate(doc)


def _connector(
    spec: AgentSpec, edit: Callable[[dict[str, Any]], None] | None = None, index: int = 0
) -> ResolvedConnector:
    doc = copy.deepcopy(load_sample("crm-connector.yaml")["spec"])
    if edit:
        edit(doc)
    return ResolvedConnector(ref=spec.connectors[index], spec=ConnectorSpec.model_validate(doc))


def _policy(edit: Callable[[dict[str, Any]], None] | None = None) -> StatePolicySpec:
    doc = copy.deepcopy(load_sample("chat-sessions-statepolicy.yaml")["spec"])
    if edit:
        edit(doc)
    return StatePolicySpec.model_validate(doc)


def _resolved(spec: AgentSpec, **fields: Any) -> ResolvedAgent:
    base: dict[str, Any] = dict(
        name="bot",
        namespace="support",
        uid="uid-1",
        spec=spec,
        image="runtime:1",
        prompt_text=spec.prompt.system or "",
        secret_hashes=SECRET_HASHES,
    )
    base.update(fields)
    return ResolvedAgent(**base)


def support_bot_sample() -> ResolvedAgent:
    spec = _spec()
    return _resolved(
        spec,
        name="support-bot",
        connectors=(_connector(spec),),
        state=ResolvedState(
            name="chat-sessions",
            spec=_policy(),
            redis_url=state_store.redis_url("chat-sessions", "support"),
            password_secret=("chat-sessions-redis-auth", "password"),
            session_key_secret="chat-sessions-session-key",
        ),
        access_secret="support-bot-access",
    )


def hello_rules_sample() -> ResolvedAgent:
    return _resolved(_spec(sample="hello-rules-agent.yaml"), name="hello", namespace="agentfleet-demo")


def rules_with_a_tool_and_a_whole_temperature() -> ResolvedAgent:
    def edit(doc: dict[str, Any]) -> None:
        doc["model"] = {
            "provider": "rules",
            "name": "lookup",
            "temperature": 1,
            "rules": [
                {
                    "pattern": r"customer (?P<email>\S+@\S+)",
                    "tool": "lookup_customer",
                    "arguments": {"email": "{email}"},
                    "reply": "Found: {tool_result}",
                },
                {"pattern": "ticket", "tool": "create_ticket"},
                {"pattern": ".*", "reply": "Sorry."},
            ],
        }
        doc["connectors"] = [{"name": "crm"}]
        doc.pop("statePolicyRef")

    spec = _spec(edit)
    return _resolved(spec, prompt_text="", connectors=(_connector(spec),), access_secret="bot-keys")


def api_key_auth_narrowed_tools_memory_store() -> ResolvedAgent:
    def edit_agent(doc: dict[str, Any]) -> None:
        doc["model"].pop("credentialsSecretRef")
        doc["model"].pop("maxTokens")
        doc["connectors"] = [{"name": "crm", "tools": ["lookup_customer"]}]

    def edit_connector(doc: dict[str, Any]) -> None:
        doc["auth"] = {"type": "apiKey", "secretRef": {"name": "crm-creds"}, "header": "X-CRM-Key"}
        doc.pop("rateLimit")
        doc["timeoutSeconds"] = 30
        doc["retries"] = 0

    spec = _spec(edit_agent)
    policy = _policy(lambda d: (d.update(store={"type": "memory"}), d.pop("encryption"), d.pop("redaction")))
    return _resolved(
        spec,
        connectors=(_connector(spec, edit_connector),),
        state=ResolvedState(name="dev", spec=policy, redis_url=None, password_secret=None),
    )


def bearer_and_unauthenticated_connectors_external_redis() -> ResolvedAgent:
    def edit_agent(doc: dict[str, Any]) -> None:
        doc["model"]["temperature"] = 0
        doc["connectors"] = [{"name": "crm"}, {"name": "hooks", "tools": ["create_ticket"]}]

    def bearer(doc: dict[str, Any]) -> None:
        doc["auth"] = {"type": "bearer", "secretRef": {"name": "crm-creds"}}
        doc["rateLimit"] = {"requestsPerSecond": 2.5}

    def unauthenticated_webhook(doc: dict[str, Any]) -> None:
        doc.update(type="webhook", endpoint="https://hooks.example.com", auth={"type": "none"})

    spec = _spec(edit_agent)
    policy = _policy(
        lambda d: (
            d.update(
                store={
                    "type": "redis",
                    "redis": {
                        "url": "rediss://redis.example.com:6380/2",
                        "passwordSecretRef": {"name": "redis-auth", "key": "pw"},
                    },
                },
                session={"ttlSeconds": 60, "maxTurns": 3},
                redaction={"patterns": []},
            ),
            d.pop("encryption"),
        )
    )
    return _resolved(
        spec,
        connectors=(_connector(spec, bearer), _connector(spec, unauthenticated_webhook, index=1)),
        state=ResolvedState(
            name="external",
            spec=policy,
            redis_url="rediss://redis.example.com:6380/2",
            password_secret=("redis-auth", "pw"),
            session_key_secret="external-session-key",
        ),
        access_secret="bot-keys",
    )


def basic_auth_all_tools_from_the_connector() -> ResolvedAgent:
    def edit_agent(doc: dict[str, Any]) -> None:
        doc["connectors"] = [{"name": "crm", "tools": []}]
        doc["prompt"] = {"configMapRef": {"name": "prompts", "key": "support"}}

    spec = _spec(edit_agent)
    connector = _connector(spec, lambda d: d.update(auth={"type": "basic", "secretRef": {"name": "crm-creds"}}))
    return _resolved(
        spec,
        prompt_text="A prompt from a ConfigMap.\n",
        connectors=(connector,),
        state=ResolvedState(
            name="chat-sessions",
            spec=_policy(lambda d: d.pop("redaction")),
            redis_url=state_store.redis_url("chat-sessions", "support"),
            password_secret=("chat-sessions-redis-auth", "password"),
            session_key_secret="chat-sessions-session-key",
        ),
    )


def mcp_connector_with_discovered_tools() -> ResolvedAgent:
    def edit_agent(doc: dict[str, Any]) -> None:
        doc["connectors"] = [{"name": "orders"}]

    def mcp(doc: dict[str, Any]) -> None:
        doc.update(type="mcp", endpoint="http://orders-mcp.support.svc:8080/mcp", tools=[])
        doc["auth"] = {"type": "bearer", "secretRef": {"name": "crm-creds"}}
        doc.pop("rateLimit")

    spec = _spec(edit_agent)
    discovered = (
        DiscoveredTool(
            name="getOrder",
            description="Look up an order.",
            schema_hash="a1",
            input_schema={"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
            idempotent=True,
        ),
        DiscoveredTool(name="create_ticket", description="Open a ticket.", schema_hash="b2"),
    )
    connector = _connector(spec, mcp)
    return _resolved(
        spec,
        connectors=(ResolvedConnector(ref=connector.ref, spec=connector.spec, tools=discovered),),
        access_secret="bot-keys",
    )


def connector_with_circuit_breaker_thresholds() -> ResolvedAgent:
    """circuitBreaker reaches the runtime as set; the Connector without it renders no key."""

    def edit_agent(doc: dict[str, Any]) -> None:
        doc["connectors"] = [{"name": "crm"}, {"name": "hooks"}]

    def breaker(doc: dict[str, Any]) -> None:
        doc["circuitBreaker"] = {"failures": 3, "openSeconds": 120}

    def webhook_without_breaker(doc: dict[str, Any]) -> None:
        doc.update(type="webhook", endpoint="https://hooks.example.com", auth={"type": "none"})

    spec = _spec(edit_agent)
    return _resolved(
        spec,
        connectors=(_connector(spec, breaker), _connector(spec, webhook_without_breaker, index=1)),
        access_secret="bot-keys",
    )


def answer_cache_and_a_cached_get_tool() -> ResolvedAgent:
    """spec.cache and a tool's cacheSeconds reach the runtime as set; a tool without it renders no key."""

    def edit_agent(doc: dict[str, Any]) -> None:
        doc["model"]["temperature"] = 0
        doc["cache"] = {"ttlSeconds": 600}

    def cached_lookup(doc: dict[str, Any]) -> None:
        doc["tools"][0]["cacheSeconds"] = 30

    spec = _spec(edit_agent)
    return _resolved(
        spec,
        connectors=(_connector(spec, cached_lookup),),
        state=ResolvedState(
            name="chat-sessions",
            spec=_policy(),
            redis_url=state_store.redis_url("chat-sessions", "support"),
            password_secret=("chat-sessions-redis-auth", "password"),
            session_key_secret="chat-sessions-session-key",
        ),
        access_secret="bot-keys",
    )


CASES: dict[str, Callable[[], ResolvedAgent]] = {
    case.__name__: case
    for case in (
        support_bot_sample,
        hello_rules_sample,
        rules_with_a_tool_and_a_whole_temperature,
        api_key_auth_narrowed_tools_memory_store,
        bearer_and_unauthenticated_connectors_external_redis,
        basic_auth_all_tools_from_the_connector,
        mcp_connector_with_discovered_tools,
        connector_with_circuit_breaker_thresholds,
        answer_cache_and_a_cached_get_tool,
    )
}

# The revision each case hashes to, computed when this test was written (image runtime:1).
REVISIONS = json.loads((GOLDEN / "revisions.json").read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_config_map_document_is_unchanged(case: str) -> None:
    agent = CASES[case]()
    revision = revision_hash(agent.image, revision_inputs(agent), agent.secret_hashes)
    assert revision == REVISIONS[case]
    track = children.Track("stable", revision, agent.image, {}, 1)
    config_map = children.revision_config_map(agent, track, build_runtime_config(agent, revision))
    assert config_map["data"]["config.json"] == (GOLDEN / f"{case}.json").read_text()


def test_circuit_breaker_thresholds_reach_the_runtime_config_only_when_set() -> None:
    config = build_runtime_config(connector_with_circuit_breaker_thresholds(), "r1")
    crm, hooks = config["connectors"]
    assert crm["circuitBreaker"] == {"failures": 3, "openSeconds": 120}
    assert "circuitBreaker" not in hooks
    for case in set(CASES) - {"connector_with_circuit_breaker_thresholds"}:
        assert all("circuitBreaker" not in c for c in build_runtime_config(CASES[case](), "r1")["connectors"])


def test_the_caches_reach_the_runtime_config_only_when_set() -> None:
    config = build_runtime_config(answer_cache_and_a_cached_get_tool(), "r1")
    assert config["cache"] == {"ttlSeconds": 600}
    lookup, ticket = config["connectors"][0]["tools"]
    assert lookup["cacheSeconds"] == 30 and "cacheSeconds" not in ticket
    for case in set(CASES) - {"answer_cache_and_a_cached_get_tool"}:
        config = build_runtime_config(CASES[case](), "r1")
        assert "cache" not in config
        assert all("cacheSeconds" not in t for c in config["connectors"] for t in c["tools"])


def test_every_golden_file_is_a_case() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} - {"revisions"} == set(CASES) == set(REVISIONS)
