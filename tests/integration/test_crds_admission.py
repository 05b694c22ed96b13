"""The generated CRDs on a real API server: they install, the samples are accepted, `kubectl get`
and `kubectl explain` read well, and invalid specs are refused at admission naming the field."""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def crds(kubeconfig: str) -> str:
    result = run_kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "crds"))
    assert result.returncode == 0, result.stderr
    wait = run_kubectl(
        kubeconfig,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/agents.agentfleet.dev",
        "crd/connectors.agentfleet.dev",
        "crd/statepolicies.agentfleet.dev",
    )
    assert wait.returncode == 0, wait.stderr
    return kubeconfig


def test_samples_are_accepted_and_listed_with_api_columns(crds: str) -> None:
    applied = run_kubectl(crds, "apply", "-k", str(ROOT / "manifests" / "samples"))
    assert applied.returncode == 0, applied.stderr
    listing = run_kubectl(crds, "get", "agt,conn,stp", "-n", "agentfleet-demo")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    headers = [line.split() for line in lines if line.startswith("NAME")]
    assert ["NAME", "READY", "PHASE", "MODEL", "CANARY", "AGE"] in headers
    assert ["NAME", "TYPE", "ENDPOINT", "READY", "USED-BY", "AGE"] in headers
    assert ["NAME", "STORE", "TTL", "READY", "USED-BY", "AGE"] in headers
    assert any(line.startswith("agent.agentfleet.dev/support-bot") and "gpt-4o-mini" in line for line in lines)
    assert any(line.startswith("statepolicy.agentfleet.dev/chat-sessions") and "3600" in line for line in lines)

    wide = run_kubectl(crds, "get", "agt", "-n", "agentfleet-demo", "-o", "wide")
    assert wide.stdout.split("\n")[0].split() == [
        "NAME",
        "READY",
        "PHASE",
        "MODEL",
        "CANARY",
        "AGE",
        "REASON",
        "ENDPOINT",
    ]
    category = run_kubectl(crds, "get", "agentfleet", "-n", "agentfleet-demo", "-o", "name")
    names = set(category.stdout.split())
    assert {
        "agent.agentfleet.dev/support-bot",
        "agent.agentfleet.dev/hello",
        "connector.agentfleet.dev/crm",
        "statepolicy.agentfleet.dev/chat-sessions",
    } <= names

    # Defaults from the models are applied by the API server.
    stored = json.loads(run_kubectl(crds, "get", "agt", "hello", "-n", "agentfleet-demo", "-o", "json").stdout)
    assert stored["spec"]["replicas"] == 1 and stored["spec"]["model"]["temperature"] == 0.2


def test_kubectl_explain_teaches_the_api(crds: str) -> None:
    result = run_kubectl(crds, "explain", "agent.spec.rollout.canary.steps")
    assert result.returncode == 0, result.stderr
    assert "exactly one of setWeight, pause, analysis" in " ".join(result.stdout.split())
    analysis = run_kubectl(crds, "explain", "agents.spec.rollout.canary.analysis.minRequests")
    assert "inconclusive" in analysis.stdout
    stp = run_kubectl(crds, "explain", "stp.spec.redaction.patterns")
    assert "creditCard" in stp.stdout


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "manifests" / "samples" / name).read_text())


AGENT = _load("support-bot-agent.yaml")
CONNECTOR = _load("crm-connector.yaml")
STATE = _load("chat-sessions-statepolicy.yaml")
MCP_CONNECTOR = _load("orders-mcp-connector.yaml")
AGENT_CONNECTOR = {
    "apiVersion": "agentfleet.dev/v1alpha1",
    "kind": "Connector",
    "metadata": {"name": "billing-desk", "namespace": "agentfleet-demo"},
    "spec": {"type": "agent", "agentRef": {"name": "billing"}},
}


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if value is _DELETE:
        if isinstance(node, list):
            node.pop(int(last))
        else:
            node.pop(last, None)
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


_DELETE = object()


def case(base: dict[str, Any], changes: dict[str, Any], expect: str) -> tuple[dict[str, Any], str]:
    doc = copy.deepcopy(base)
    for dotted, value in changes.items():
        _set(doc, dotted, value)
    return doc, expect


ONLY_GET_CACHED = "cacheSeconds is allowed only on GET tools of an http Connector"

INVALID: dict[str, tuple[dict[str, Any], str]] = {
    # Agent
    "prompt-both": case(
        AGENT,
        {"spec.prompt.configMapRef": {"name": "p", "key": "k"}},
        "spec.prompt: exactly one of system or configMapRef",
    ),
    "prompt-none": case(AGENT, {"spec.prompt.system": _DELETE}, "spec.prompt: exactly one of system or configMapRef"),
    "endpoint-missing": case(AGENT, {"spec.model.endpoint": _DELETE}, "spec.model.endpoint"),
    "endpoint-not-http": case(AGENT, {"spec.model.endpoint": "ftp://llm/v1"}, "spec.model.endpoint"),
    "provider-unknown": case(AGENT, {"spec.model.provider": "anthropic"}, "spec.model.provider"),
    "temperature-high": case(AGENT, {"spec.model.temperature": 3}, "spec.model.temperature"),
    "max-tokens-zero": case(AGENT, {"spec.model.maxTokens": 0}, "spec.model.maxTokens"),
    "model-timeout-zero": case(AGENT, {"spec.model.timeoutSeconds": 0}, "spec.model.timeoutSeconds"),
    "model-timeout-above-600": case(AGENT, {"spec.model.timeoutSeconds": 601}, "spec.model.timeoutSeconds"),
    "rules-on-llm": case(AGENT, {"spec.model.rules": [{"pattern": "x", "reply": "y"}]}, "spec.model.rules"),
    "model-missing": case(AGENT, {"spec.model": _DELETE}, "spec.model"),
    "min-above-max": case(AGENT, {"spec.autoscaling.minReplicas": 11}, "spec.autoscaling.minReplicas"),
    "min-zero": case(AGENT, {"spec.autoscaling.minReplicas": 0}, "spec.autoscaling.minReplicas"),
    "replicas-negative": case(AGENT, {"spec.replicas": -1}, "spec.replicas"),
    "step-two-actions": case(
        AGENT,
        {"spec.rollout.canary.steps.0.pause": {}},
        "each step must set exactly one of setWeight, pause or analysis",
    ),
    "step-empty": case(
        AGENT, {"spec.rollout.canary.steps.0": {}}, "each step must set exactly one of setWeight, pause or analysis"
    ),
    "weight-zero": case(AGENT, {"spec.rollout.canary.steps.0.setWeight": 0}, "spec.rollout.canary.steps[0].setWeight"),
    "weight-above-100": case(
        AGENT, {"spec.rollout.canary.steps.3.setWeight": 101}, "spec.rollout.canary.steps[3].setWeight"
    ),
    "pause-bad-duration": case(
        AGENT, {"spec.rollout.canary.steps.1.pause.duration": "soon"}, "spec.rollout.canary.steps[1].pause.duration"
    ),
    "canary-missing": case(AGENT, {"spec.rollout.canary": _DELETE}, "spec.rollout.canary"),
    "analysis-missing": case(AGENT, {"spec.rollout.canary.analysis": _DELETE}, "spec.rollout.canary.analysis"),
    "strategy-unknown": case(AGENT, {"spec.rollout.strategy": "BlueGreen"}, "spec.rollout.strategy"),
    "error-ratio-above-1": case(
        AGENT, {"spec.rollout.canary.analysis.maxErrorRatio": 1.5}, "spec.rollout.canary.analysis.maxErrorRatio"
    ),
    "duplicate-connector": case(AGENT, {"spec.connectors": [{"name": "crm"}, {"name": "crm"}]}, "spec.connectors[1]"),
    "bad-allowed-namespace": case(
        AGENT, {"spec.access.allowedNamespaces": ["Bad_NS"]}, "spec.access.allowedNamespaces[0]"
    ),
    "name-too-long": case(AGENT, {"metadata.name": "a" * 48}, "metadata.name"),
    "bad-tool-filter": case(AGENT, {"spec.connectors.0.tools": ["Lookup"]}, "spec.connectors[0].tools[0]"),
    # Agent spec.cache: kept in the StatePolicy's store, so it needs one; a bounded TTL
    "cache-without-state-policy": case(
        AGENT,
        {"spec.cache": {"ttlSeconds": 60}, "spec.statePolicyRef": _DELETE},
        "spec.cache needs spec.statePolicyRef",
    ),
    "cache-ttl-zero": case(AGENT, {"spec.cache": {"ttlSeconds": 0}}, "spec.cache.ttlSeconds"),
    "cache-ttl-above-a-week": case(AGENT, {"spec.cache": {"ttlSeconds": 604_801}}, "spec.cache.ttlSeconds"),
    "cache-without-ttl": case(AGENT, {"spec.cache": {}}, "spec.cache.ttlSeconds"),
    # Egress CIDRs: isCIDR (Kubernetes 1.31+ CEL), the refusal naming the field and the entry
    "model-egress-host": case(AGENT, {"spec.model.egress": ["api.openai.com"]}, "spec.model.egress[0]"),
    "model-egress-bare-address": case(
        AGENT, {"spec.model.egress": ["203.0.113.0/24", "203.0.113.7"]}, "spec.model.egress[1]"
    ),
    "model-egress-without-endpoint": case(
        AGENT,
        {"spec.model": {"provider": "rules", "name": "r", "egress": ["203.0.113.0/24"]}},
        "spec.model.egress may only be set with spec.model.endpoint",
    ),
    # Connector
    "connector-endpoint": case(CONNECTOR, {"spec.endpoint": "crm.example.com"}, "spec.endpoint"),
    "connector-type": case(CONNECTOR, {"spec.type": "soap"}, "spec.type"),
    "auth-without-secret": case(CONNECTOR, {"spec.auth.secretRef": _DELETE}, "spec.auth.secretRef"),
    "auth-none-with-secret": case(
        CONNECTOR, {"spec.auth": {"type": "none", "secretRef": {"name": "s"}}}, "spec.auth.secretRef"
    ),
    "header-on-bearer": case(
        CONNECTOR, {"spec.auth": {"type": "bearer", "secretRef": {"name": "s"}, "header": "X-Key"}}, "spec.auth.header"
    ),
    "oauth-without-token-url": case(CONNECTOR, {"spec.auth.tokenURL": _DELETE}, "spec.auth.tokenURL"),
    "scopes-on-api-key": case(
        CONNECTOR, {"spec.auth": {"type": "apiKey", "secretRef": {"name": "s"}, "scopes": ["a"]}}, "spec.auth.scopes"
    ),
    "duplicate-tool": case(CONNECTOR, {"spec.tools.1.name": "lookup_customer"}, "spec.tools[1]"),
    "tool-name-pattern": case(CONNECTOR, {"spec.tools.0.name": "Lookup-Customer"}, "spec.tools[0].name"),
    "tool-method": case(CONNECTOR, {"spec.tools.0.method": "FETCH"}, "spec.tools[0].method"),
    "http-without-tools": case(CONNECTOR, {"spec.tools": []}, "spec.tools"),
    "timeout-zero": case(CONNECTOR, {"spec.timeoutSeconds": 0}, "spec.timeoutSeconds"),
    "rate-zero": case(CONNECTOR, {"spec.rateLimit.requestsPerSecond": 0}, "spec.rateLimit.requestsPerSecond"),
    # Tool cacheSeconds: only a call without side effects may be answered from a cache
    "tool-cache-on-post": case(CONNECTOR, {"spec.tools.1.cacheSeconds": 60}, ONLY_GET_CACHED),
    "tool-cache-on-webhook": case(
        CONNECTOR,
        {"spec.type": "webhook", "spec.tools.0.cacheSeconds": 60},
        ONLY_GET_CACHED,
    ),
    "tool-cache-on-mcp": case(MCP_CONNECTOR, {"spec.tools.0.cacheSeconds": 60}, ONLY_GET_CACHED),
    "tool-cache-on-agent": case(
        AGENT_CONNECTOR,
        {"spec.tools": [{"name": "ask_billing", "cacheSeconds": 60}]},
        ONLY_GET_CACHED,
    ),
    "tool-cache-zero": case(CONNECTOR, {"spec.tools.0.cacheSeconds": 0}, "spec.tools[0].cacheSeconds"),
    "tool-cache-above-a-day": case(CONNECTOR, {"spec.tools.0.cacheSeconds": 86_401}, "spec.tools[0].cacheSeconds"),
    "egress-prefix-too-long": case(CONNECTOR, {"spec.egress": ["10.0.0.0/33"]}, "spec.egress[0]"),
    "egress-mapped-ipv6": case(CONNECTOR, {"spec.egress": ["::ffff:10.0.0.0/104"]}, "spec.egress[0]"),
    "egress-duplicate": case(CONNECTOR, {"spec.egress": ["10.0.0.0/8", "10.0.0.0/8"]}, "spec.egress[1]"),
    "egress-on-agent-connector": case(AGENT_CONNECTOR, {"spec.egress": ["10.0.0.0/8"]}, "spec.egress"),
    "breaker-failures-zero": case(CONNECTOR, {"spec.circuitBreaker": {"failures": 0}}, "spec.circuitBreaker.failures"),
    "breaker-failures-above-100": case(
        CONNECTOR, {"spec.circuitBreaker": {"failures": 101, "openSeconds": 10}}, "spec.circuitBreaker.failures"
    ),
    "breaker-open-zero": case(
        MCP_CONNECTOR, {"spec.circuitBreaker": {"openSeconds": 0}}, "spec.circuitBreaker.openSeconds"
    ),
    "breaker-open-above-an-hour": case(
        AGENT_CONNECTOR, {"spec.circuitBreaker": {"openSeconds": 3601}}, "spec.circuitBreaker.openSeconds"
    ),
    # Connector type agent
    "agent-without-ref": case(AGENT_CONNECTOR, {"spec.agentRef": _DELETE}, "spec.agentRef"),
    "agent-ref-on-http": case(CONNECTOR, {"spec.agentRef": {"name": "billing"}}, "spec.agentRef"),
    "http-without-endpoint": case(CONNECTOR, {"spec.endpoint": _DELETE}, "spec.endpoint"),
    "agent-with-endpoint": case(AGENT_CONNECTOR, {"spec.endpoint": "http://billing:8080"}, "spec.endpoint"),
    "agent-with-auth": case(
        AGENT_CONNECTOR, {"spec.auth": {"type": "bearer", "secretRef": {"name": "s"}}}, "spec.auth.type"
    ),
    "agent-two-tools": case(AGENT_CONNECTOR, {"spec.tools": [{"name": "a"}, {"name": "b"}]}, "spec.tools"),
    "agent-tool-path": case(AGENT_CONNECTOR, {"spec.tools": [{"name": "a", "path": "/x"}]}, "spec.tools"),
    "agent-tool-method": case(AGENT_CONNECTOR, {"spec.tools": [{"name": "a", "method": "POST"}]}, "spec.tools"),
    "agent-tool-parameters": case(
        AGENT_CONNECTOR, {"spec.tools": [{"name": "a", "parameters": {"type": "object"}}]}, "spec.tools"
    ),
    "agent-ref-name": case(AGENT_CONNECTOR, {"spec.agentRef.name": "Billing_Bot"}, "spec.agentRef.name"),
    # Connector type mcp: the server describes its tools, spec.tools only names those to keep
    "mcp-tool-description": case(MCP_CONNECTOR, {"spec.tools.0.description": "mine"}, "spec.tools"),
    "mcp-tool-path": case(MCP_CONNECTOR, {"spec.tools.0.path": "/orders"}, "spec.tools"),
    "mcp-tool-parameters": case(MCP_CONNECTOR, {"spec.tools.0.parameters": {"type": "object"}}, "spec.tools"),
    "mcp-without-endpoint": case(MCP_CONNECTOR, {"spec.endpoint": _DELETE}, "spec.endpoint"),
    # StatePolicy
    "redis-block-missing": case(STATE, {"spec.store.redis": _DELETE}, "spec.store.redis"),
    "redis-url-and-provision": case(STATE, {"spec.store.redis.url": "redis://r:6379/0"}, "spec.store.redis"),
    "redis-url-scheme": case(STATE, {"spec.store.redis": {"url": "http://r:6379"}}, "spec.store.redis.url"),
    "memory-with-redis": case(STATE, {"spec.store.type": "memory"}, "spec.store.redis"),
    "redis-egress-not-cidr": case(
        STATE,
        {"spec.store.redis": {"url": "redis://r:6379/0", "egress": ["redis.example.com"]}},
        "spec.store.redis.egress[0]",
    ),
    "redis-egress-on-provisioned": case(
        STATE, {"spec.store.redis.egress": ["10.0.0.0/8"]}, "spec.store.redis.egress may only be set with"
    ),
    "redaction-unknown": case(STATE, {"spec.redaction.patterns": ["ssn"]}, "spec.redaction.patterns[0]"),
    "ttl-zero": case(STATE, {"spec.session.ttlSeconds": 0}, "spec.session.ttlSeconds"),
    "encryption-key-missing": case(
        STATE, {"spec.encryption.keySecretRef.key": _DELETE}, "spec.encryption.keySecretRef.key"
    ),
}


def test_there_are_at_least_25_distinct_invalid_cases() -> None:
    assert len(INVALID) >= 25
    assert len({json.dumps(doc, sort_keys=True) for doc, _ in INVALID.values()}) == len(INVALID)


@pytest.fixture(scope="module")
def invalid_ns(crds: str) -> Callable[[], str]:
    # Fresh each run: one left terminating by the last run would refuse every create as Forbidden.
    name = f"af-invalid-{uuid.uuid4().hex[:8]}"
    created = run_kubectl(crds, "create", "namespace", name)
    assert created.returncode == 0, created.stderr
    yield name
    run_kubectl(crds, "delete", "namespace", name, "--wait=false")


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "agent", "agentRef": {"name": "billing"}},
        {"type": "agent", "agentRef": {"name": "billing"}, "tools": [{"name": "billing_help", "description": "Bills"}]},
        {"type": "agent", "agentRef": {"name": "billing"}, "auth": {"type": "none"}, "timeoutSeconds": 60},
    ],
)
def test_agent_connectors_are_accepted(crds: str, invalid_ns: str, spec: dict[str, Any]) -> None:
    doc = copy.deepcopy(AGENT_CONNECTOR)
    doc["metadata"].update(name=f"agent-{uuid.uuid4().hex[:6]}", namespace=invalid_ns)
    doc["spec"] = spec
    result = run_kubectl(crds, "create", "-f", "-", stdin=yaml.safe_dump(doc))
    assert result.returncode == 0, result.stderr
    stored = json.loads(
        run_kubectl(crds, "get", "conn", doc["metadata"]["name"], "-n", invalid_ns, "-o", "json").stdout
    )
    assert stored["spec"]["auth"] == {"type": "none"} and "endpoint" not in stored["spec"]


def test_circuit_breaker_thresholds_are_stored_with_the_runtimes_defaults_filled_in(crds: str, invalid_ns: str) -> None:
    doc = copy.deepcopy(CONNECTOR)
    doc["metadata"].update(name=f"breaker-{uuid.uuid4().hex[:6]}", namespace=invalid_ns)
    doc["spec"]["circuitBreaker"] = {"failures": 2}
    result = run_kubectl(crds, "create", "-f", "-", stdin=yaml.safe_dump(doc))
    assert result.returncode == 0, result.stderr
    stored = json.loads(
        run_kubectl(crds, "get", "conn", doc["metadata"]["name"], "-n", invalid_ns, "-o", "json").stdout
    )
    assert stored["spec"]["circuitBreaker"] == {"failures": 2, "openSeconds": 30}


def test_an_answer_cache_and_a_cached_get_tool_are_accepted(crds: str, invalid_ns: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    connector = copy.deepcopy(CONNECTOR)
    connector["metadata"].update(name=f"cached-{suffix}", namespace=invalid_ns)
    connector["spec"]["tools"][0]["cacheSeconds"] = 30  # lookup_customer, a GET
    agent = copy.deepcopy(AGENT)
    agent["metadata"].update(name=f"cached-{suffix}", namespace=invalid_ns)
    agent["spec"]["cache"] = {"ttlSeconds": 600}
    for doc in (connector, agent):
        result = run_kubectl(crds, "create", "-f", "-", stdin=yaml.safe_dump(doc))
        assert result.returncode == 0, result.stderr
    stored = json.loads(run_kubectl(crds, "get", "conn", f"cached-{suffix}", "-n", invalid_ns, "-o", "json").stdout)
    assert stored["spec"]["tools"][0]["cacheSeconds"] == 30 and "cacheSeconds" not in stored["spec"]["tools"][1]
    stored = json.loads(run_kubectl(crds, "get", "agt", f"cached-{suffix}", "-n", invalid_ns, "-o", "json").stdout)
    assert stored["spec"]["cache"] == {"ttlSeconds": 600}
    explained = run_kubectl(crds, "explain", "agents.spec.cache")
    assert "temperature is 0" in " ".join(explained.stdout.split()), explained.stdout


def test_egress_cidrs_are_accepted_as_written(crds: str, invalid_ns: str) -> None:
    doc = copy.deepcopy(CONNECTOR)
    doc["metadata"].update(name=f"egress-{uuid.uuid4().hex[:6]}", namespace=invalid_ns)
    doc["spec"]["egress"] = ["203.0.113.0/24", "198.51.100.7/32", "2001:db8::/48", "10.1.2.3/8"]
    result = run_kubectl(crds, "create", "-f", "-", stdin=yaml.safe_dump(doc))
    assert result.returncode == 0, result.stderr
    stored = json.loads(
        run_kubectl(crds, "get", "conn", doc["metadata"]["name"], "-n", invalid_ns, "-o", "json").stdout
    )
    assert stored["spec"]["egress"] == doc["spec"]["egress"]  # a host bit set is a CIDR too (the policy masks it)
    explained = run_kubectl(crds, "explain", "connector.spec.egress")
    assert "NetworkPolicy" in explained.stdout


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_spec_is_refused_naming_the_field(crds: str, invalid_ns: str, name: str) -> None:
    doc, expected = INVALID[name]
    doc = copy.deepcopy(doc)
    doc["metadata"]["namespace"] = invalid_ns
    result = run_kubectl(crds, "create", "-f", "-", stdin=yaml.safe_dump(doc))
    assert result.returncode != 0, f"{name} was accepted"
    assert "is invalid" in result.stderr or "Invalid value" in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr
    # Nothing half-written: the object does not exist.
    kind = doc["kind"].lower()
    got = run_kubectl(crds, "get", kind, doc["metadata"]["name"], "-n", invalid_ns, "--ignore-not-found", "-o", "name")
    assert got.stdout.strip() == ""
