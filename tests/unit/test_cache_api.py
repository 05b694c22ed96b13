"""Agent spec.cache and a Connector tool's cacheSeconds in the API models: bounds, the CRD's rules
repeated by the models (so an object the CRD would refuse never reaches the builder), the CRD text."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from agentfleet_operator import crdgen
from agentfleet_operator.api import AgentSpec, ConnectorSpec
from agentfleet_operator.api.kinds import ALL_KINDS
from pydantic import ValidationError

from tests.unit.samples import load_sample

AGENT = load_sample("support-bot-agent.yaml")["spec"]
CONNECTOR = load_sample("crm-connector.yaml")["spec"]


def _schema(kind: str) -> dict[str, Any]:
    info = next(i for i in ALL_KINDS if i.kind == kind)
    return crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def agent(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(AGENT)
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def test_an_agent_with_a_state_policy_may_cache_its_answers() -> None:
    spec = AgentSpec.model_validate(agent(cache={"ttlSeconds": 300}))
    assert spec.cache is not None and spec.cache.ttl_seconds == 300
    assert AgentSpec.model_validate(agent()).cache is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (agent(cache={"ttlSeconds": 300}, statePolicyRef=None), "spec.cache needs spec.statePolicyRef"),
        (agent(cache={"ttlSeconds": 0}), "greater than or equal to 1"),
        (agent(cache={"ttlSeconds": 604_801}), "less than or equal to 604800"),
        (agent(cache={}), "ttlSeconds"),
    ],
)
def test_the_agent_model_refuses_what_the_crd_refuses(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AgentSpec.model_validate(doc)


def tools(connector_type: str, *tool_list: dict[str, Any], **more: Any) -> dict[str, Any]:
    doc = copy.deepcopy(CONNECTOR)
    doc.update(type=connector_type, tools=list(tool_list), **more)
    if connector_type == "agent":
        doc.pop("endpoint")
        doc.update(auth={"type": "none"}, agentRef={"name": "billing"})
    return doc


def test_a_get_tool_of_an_http_connector_may_cache_its_results() -> None:
    spec = ConnectorSpec.model_validate(tools("http", {"name": "lookup", "method": "GET", "cacheSeconds": 60}))
    assert spec.tools[0].cache_seconds == 60


@pytest.mark.parametrize(
    "doc",
    [
        tools("http", {"name": "open_ticket", "method": "POST", "cacheSeconds": 60}),
        tools("http", {"name": "drop", "method": "DELETE", "cacheSeconds": 60}),
        tools("webhook", {"name": "notify", "cacheSeconds": 60}),
        tools("mcp", {"name": "get_order", "cacheSeconds": 60}),
        tools("agent", {"name": "ask_billing", "cacheSeconds": 60}),
    ],
    ids=["post", "delete", "webhook", "mcp", "agent"],
)
def test_cache_seconds_is_refused_on_anything_but_http_get(doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"cacheSeconds is allowed only on GET tools of an http Connector"):
        ConnectorSpec.model_validate(doc)


@pytest.mark.parametrize("seconds", [0, 86_401])
def test_cache_seconds_is_bounded(seconds: int) -> None:
    with pytest.raises(ValidationError, match=r"cache_seconds|cacheSeconds"):
        ConnectorSpec.model_validate(tools("http", {"name": "lookup", "cacheSeconds": seconds}))


def test_the_crds_carry_the_rules_and_explain_the_fields() -> None:
    agent_schema = _schema("Agent")
    rules = {r["rule"]: r for r in agent_schema["x-kubernetes-validations"]}
    assert rules["!has(self.cache) || has(self.statePolicyRef)"]["fieldPath"] == ".cache"
    described = agent_schema["properties"]["cache"]["description"]
    for words in ("temperature is 0", "tool call", "redaction", "new revision", "agent_cache_requests_total"):
        assert words in described
    connector_schema = _schema("Connector")
    (rule,) = [r for r in connector_schema["x-kubernetes-validations"] if "cacheSeconds" in r["rule"]]
    assert "GET tools of an http Connector" in rule["message"] and rule["fieldPath"] == ".tools"
    tool = connector_schema["properties"]["tools"]["items"]["properties"]["cacheSeconds"]
    assert (tool["minimum"], tool["maximum"]) == (1, 86_400)
