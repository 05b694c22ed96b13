"""The egress of an Agent's NetworkPolicy (builders/egress.py): host names become the pods of the
Services they name, IP addresses their /32 or /128, outside hosts the CIDRs their owner lists; DNS goes
to the cluster DNS only, and nothing else is allowed. The samples are rendered with the sample
Services and each place their pods call is checked against the policy as a plugin would read it."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from agentfleet_operator.api import AgentSpec, ConnectorSpec, StatePolicySpec, reasons
from agentfleet_operator.api.agent import AgentConnectorRef
from agentfleet_operator.api.kinds import ALL_KINDS
from agentfleet_operator.builders import agent_children as children
from agentfleet_operator.builders import egress, names, state_store
from agentfleet_operator.builders.agent_status import (
    ObservedAgent,
    ReplicaTarget,
    RolloutPlan,
    agent_status,
    egress_condition,
)
from agentfleet_operator.builders.egress import (
    Allow,
    EgressSettings,
    Endpoint,
    Need,
    ServiceName,
    ServiceView,
    endpoint,
    service_name,
)
from agentfleet_operator.builders.inputs import AgentTarget, Resolution, ResolvedAgent, ResolvedConnector, ResolvedState
from agentfleet_operator.crdgen import build_crd
from agentfleet_operator.handlers.indexes import services_idx
from agentfleet_operator.handlers.triggers import _connectors_naming
from agentfleet_operator.reconcile.resolve import resolve
from agentfleet_operator.reconcile.store import Store
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "manifests" / "samples"
DOMAIN = "cluster.local"
NS = "support"


# A NetworkPolicy's egress as a plugin reads it ----------------------------------------------------------


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """matchLabels and the In operator (all the operator writes)."""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def admits(
    policy: dict[str, Any],
    *,
    port: int,
    port_name: str | None = None,
    protocol: str = "TCP",
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    ip: str | None = None,
) -> bool:
    """Does the policy's egress let its pods reach this pod (namespace, labels, container port) or this
    address? The rules of networking.k8s.io/v1: any rule, any of its peers, any of its ports."""
    own = policy["metadata"]["namespace"]
    for rule in policy["spec"]["egress"]:
        assert rule.get("to") and rule.get("ports"), f"a rule without peers or ports allows too much: {rule}"
        port_ok = any(
            p["protocol"] == protocol and (p["port"] == port or (port_name is not None and p["port"] == port_name))
            for p in rule["ports"]
        )
        if not port_ok:
            continue
        for peer in rule["to"]:
            if "ipBlock" in peer:
                if ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network(peer["ipBlock"]["cidr"]):
                    return True
                continue
            if labels is None:
                continue
            if "namespaceSelector" in peer:
                ns_ok = _matches(peer["namespaceSelector"], {egress.NAMESPACE_LABEL: namespace or ""})
            else:
                ns_ok = namespace == own
            if ns_ok and _matches(peer.get("podSelector"), labels):
                return True
    return False


# Host names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://demo-crm.agentfleet-demo.svc:8080/api", Endpoint("demo-crm.agentfleet-demo.svc", 8080)),
        ("https://CRM.Example.COM./api", Endpoint("crm.example.com", 443)),
        ("http://llm:8000/v1", Endpoint("llm", 8000)),
        ("http://llm/v1", Endpoint("llm", 80)),
        ("redis://:secret@redis.data.svc.cluster.local/0", Endpoint("redis.data.svc.cluster.local", 6379)),
        ("rediss://cache.example.com/0", Endpoint("cache.example.com", 6379)),  # redis-py's default, TLS or not
        ("http://[2001:db8::1]:8443/x", Endpoint("2001:db8::1", 8443)),
        ("http://host:99999/", None),  # no such port: nothing can be dialled
        ("not a url", None),
    ],
)
def test_endpoints_are_read_as_a_client_dials_them(url: str, expected: Endpoint | None) -> None:
    assert endpoint(url) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("crm", ServiceName(NS, "crm", True)),
        ("crm.billing", ServiceName("billing", "crm", False)),
        ("crm.billing.svc", ServiceName("billing", "crm", True)),
        ("crm.billing.svc.cluster.local", ServiceName("billing", "crm", True)),
        ("crm.example.com", None),
        ("pod-0.crm.billing.svc.cluster.local", None),  # a headless Service's pod: no Service of its own
        ("crm.billing.svc.other.domain", None),
        ("10.0.0.1", None),
        ("localhost", None),
        ("1crm.billing.svc", None),  # not a Service name (DNS-1035)
    ],
)
def test_service_names_as_the_pods_resolver_finds_them(host: str, expected: ServiceName | None) -> None:
    assert service_name(host, NS, DOMAIN) == expected


LABEL = st.from_regex(r"[a-z]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True).filter(lambda s: s != "svc")


@given(name=LABEL, namespace=LABEL, own=LABEL, domain=st.sampled_from(["cluster.local", "corp.internal", "k8s"]))
def test_every_spelling_of_a_service_names_the_same_service(name: str, namespace: str, own: str, domain: str) -> None:
    for host in (f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{domain}"):
        assert service_name(host, own, domain) == ServiceName(namespace, name, True)
        # Case, a trailing dot and a port do not change what a URL names.
        ep = endpoint(f"http://{host.upper()}.:9000/")
        assert ep is not None and service_name(ep.host, own, domain) == ServiceName(namespace, name, True)
    if f"{name}.{namespace}" not in egress.LOOPBACK_HOSTS:
        assert service_name(f"{name}.{namespace}", own, domain) == ServiceName(namespace, name, False)
    if name not in egress.LOOPBACK_HOSTS:
        assert service_name(name, own, domain) == ServiceName(own, name, True)


@given(st.text(max_size=80))
def test_any_text_is_parsed_without_error(text: str) -> None:
    for url in (text, f"http://{text}", f"https://{text}/x", f"redis://{text}:6379/0"):
        ep = endpoint(url)
        if ep is None:
            continue
        assert 0 <= ep.port <= 65535
        found = service_name(ep.host, NS, DOMAIN)
        if found is not None:
            assert egress._SERVICE_NAME.match(found.name) and egress._NAMESPACE_NAME.match(found.namespace)
        allowed, gaps = egress.allow(Need("spec.model.endpoint", url, (), "spec.model.egress"), NS, {}, DOMAIN)
        assert len(allowed) + len(gaps) <= 1


# One URL ------------------------------------------------------------------------------------------------


def _service(**spec: Any) -> ServiceView:
    return ServiceView.from_spec(spec)


CRM = _service(selector={"app": "crm"}, ports=[{"name": "http", "port": 80, "targetPort": "web"}])


def _allow(url: str, services: dict[tuple[str, str], ServiceView] | None = None, cidrs: tuple[str, ...] = ()) -> Any:
    need = Need("Connector crm", url, cidrs, "spec.egress of Connector crm")
    allowed, gaps = egress.allow(need, NS, services or {}, DOMAIN)
    return [(json.loads(a.peer), a.port) for a in allowed], [(g.reason, g.message) for g in gaps]


def _pods(namespace: str, **labels: str) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {egress.NAMESPACE_LABEL: namespace}},
        "podSelector": {"matchLabels": labels},
    }


def test_a_service_is_reached_at_its_selected_pods_on_the_target_port() -> None:
    services = {(NS, "crm"): CRM, ("billing", "crm"): CRM}
    assert _allow("http://crm/api", services) == ([(_pods(NS, app="crm"), ("TCP", "web"))], [])
    assert _allow("http://crm.billing.svc.cluster.local/api", services) == (
        [(_pods("billing", app="crm"), ("TCP", "web"))],
        [],
    )
    numbered = {(NS, "crm"): _service(selector={"app": "crm"}, ports=[{"port": 8080, "targetPort": 9090}])}
    assert _allow("http://crm:8080", numbered)[0] == [(_pods(NS, app="crm"), ("TCP", 9090))]
    defaulted = {(NS, "crm"): _service(selector={"app": "crm"}, ports=[{"port": 8080}])}
    assert _allow("http://crm:8080", defaulted)[0] == [(_pods(NS, app="crm"), ("TCP", 8080))]
    # A headless Service's clients dial the pods themselves, on the URL's port.
    headless = {(NS, "crm"): _service(selector={"app": "crm"}, clusterIP="None", ports=[{"port": 1}])}
    assert _allow("http://crm:7000", headless)[0] == [(_pods(NS, app="crm"), ("TCP", 7000))]


def test_a_service_that_cannot_carry_the_call_is_reported() -> None:
    assert _allow("http://crm.support.svc:8080") == (
        [],
        [
            (
                reasons.EGRESS_SERVICE_NOT_FOUND,
                "Connector crm: Service crm in namespace support not found; "
                "no egress to crm.support.svc until it exists",
            )
        ],
    )
    allowed, gaps = _allow("http://crm:8080", {(NS, "crm"): CRM})
    assert allowed == [] and gaps[0][0] == reasons.EGRESS_SERVICE_PORT_NOT_FOUND and "no TCP port 8080" in gaps[0][1]


def test_hosts_outside_the_cluster_need_cidrs_and_say_where() -> None:
    allowed, gaps = _allow("https://crm.example.com/api")
    assert allowed == []
    ((reason, message),) = gaps
    assert reason == reasons.EGRESS_CIDRS_MISSING
    assert "crm.example.com:443" in message and "spec.egress of Connector crm" in message
    assert _allow("https://crm.example.com/api", cidrs=("203.0.113.9/24", "2001:db8::/48")) == (
        [
            ({"ipBlock": {"cidr": "203.0.113.0/24"}}, ("TCP", 443)),
            ({"ipBlock": {"cidr": "2001:db8::/48"}}, ("TCP", 443)),
        ],
        [],
    )
    # <a>.<b> with no Service b/a is an outside host; so are an alias and a Service without selector.
    assert _allow("http://crm.example")[1][0][0] == reasons.EGRESS_CIDRS_MISSING
    alias = {(NS, "crm"): _service(type="ExternalName", externalName="crm.example.com")}
    assert "an alias of crm.example.com" in _allow("http://crm/", alias)[1][0][1]
    manual = {(NS, "crm"): _service(ports=[{"port": 80}])}
    assert "has no selector" in _allow("http://crm/", manual)[1][0][1]
    assert _allow("http://crm/", manual, cidrs=("10.9.0.0/16",))[0] == [
        ({"ipBlock": {"cidr": "10.9.0.0/16"}}, ("TCP", 80))
    ]


def test_addresses_are_their_own_block_and_loopback_needs_nothing() -> None:
    assert _allow("http://10.0.0.5:9000/v1") == ([({"ipBlock": {"cidr": "10.0.0.5/32"}}, ("TCP", 9000))], [])
    assert _allow("http://[2001:db8::1]/v1") == ([({"ipBlock": {"cidr": "2001:db8::1/128"}}, ("TCP", 80))], [])
    for url in ("http://localhost:8081", "http://127.0.0.1:9000", "http://[::1]/"):
        assert _allow(url) == ([], [])


# The rules ---------------------------------------------------------------------------------------------

PEERS = [
    egress.pods_peer(None, [("agentfleet.dev/agent", "billing")]),
    egress.pods_peer("data", [("app", "redis")]),
    egress.cidr_peer("203.0.113.0/24"),
    egress.cidr_peer("2001:db8::/48"),
]
PORTS: list[egress.Port] = [("TCP", 80), ("TCP", 443), ("TCP", "http"), ("TCP", 8080)]


@given(st.lists(st.tuples(st.sampled_from(PEERS), st.sampled_from(PORTS)), max_size=12), st.randoms())
def test_rules_allow_exactly_the_pairs_asked_for_in_one_order(pairs: list[Any], rng: random.Random) -> None:
    allows = [Allow(peer, port) for peer, port in pairs]
    out = egress.rules(allows)
    covered = {
        (egress._peer(peer), (port["protocol"], port["port"]))
        for rule in out
        for peer in rule["to"]
        for port in rule["ports"]
    }
    assert covered == {(a.peer, a.port) for a in allows}  # no pair added by grouping, none lost
    assert all(rule["to"] and rule["ports"] for rule in out)
    shuffled = list(allows)
    rng.shuffle(shuffled)
    assert egress.rules(shuffled) == out


def test_dns_goes_to_the_cluster_dns_only() -> None:
    (rule,) = [egress.dns_rule(EgressSettings())]
    assert rule == {
        "to": [_pods("kube-system", **{"k8s-app": "kube-dns"})],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    host_dns = egress.dns_rule(EgressSettings(dns_pod_labels=(), dns_cidrs=("10.250.0.1/32",)))
    assert host_dns["to"] == [{"ipBlock": {"cidr": "10.250.0.1/32"}}]
    with pytest.raises(ValueError):
        egress.dns_rule(EgressSettings(dns_pod_labels=(), dns_cidrs=()))


# Agents --------------------------------------------------------------------------------------------------


def _connector(name: str, spec: dict[str, Any], target: AgentTarget | None = None) -> ResolvedConnector:
    return ResolvedConnector(ref=AgentConnectorRef(name=name), spec=ConnectorSpec.model_validate(spec), target=target)


def _rules_agent(**model: Any) -> AgentSpec:
    return AgentSpec.model_validate(
        {"model": {"provider": "rules", "name": "r", **model}, "prompt": {"system": "hi"}, "connectors": []}
    )


def _resolved(connectors: tuple[ResolvedConnector, ...] = (), **more: Any) -> ResolvedAgent:
    base: dict[str, Any] = {"spec": _rules_agent(), "connectors": connectors}
    base.update(more)
    return ResolvedAgent(name="bot", namespace=NS, uid="u", image="i", prompt_text="", **base)


HTTP_TOOL = {"tools": [{"name": "t"}]}


def test_the_policy_is_the_same_whatever_order_things_come_in() -> None:
    a = _connector(
        "a", {"type": "http", "endpoint": "https://a.example.com", "egress": ["203.0.113.0/24"], **HTTP_TOOL}
    )
    b = _connector("b", {"type": "http", "endpoint": "http://crm/api", **HTTP_TOOL})
    c = _connector(
        "c", {"type": "agent", "agentRef": {"name": "billing"}}, AgentTarget("billing", "http://x", "s", "k")
    )
    services = {(NS, "crm"): CRM}
    first = children.network_policy(_resolved((a, b, c), services=services))
    assert children.network_policy(_resolved((c, b, a), services=services)) == first
    assert first["spec"]["egress"][1:] == [
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]},
        {"to": [{"podSelector": {"matchLabels": {"agentfleet.dev/agent": "billing"}}}],
         "ports": [{"protocol": "TCP", "port": 8080}]},
        {"to": [_pods(NS, app="crm")], "ports": [{"protocol": "TCP", "port": "web"}]},
    ]  # fmt: skip


def test_token_urls_model_and_an_external_redis_count_and_report_their_own_field() -> None:
    oauth = _connector(
        "crm",
        {
            "type": "http",
            "endpoint": "http://crm/api",
            "auth": {
                "type": "oauth2ClientCredentials",
                "secretRef": {"name": "s"},
                "tokenURL": "https://login.example.com/t",
            },
            **HTTP_TOOL,
        },
    )
    policy = StatePolicySpec.model_validate(
        {"store": {"type": "redis", "redis": {"url": "rediss://cache.example.com"}}}
    )
    state = ResolvedState("sessions", policy, "rediss://cache.example.com", None)
    spec = _rules_agent()
    spec = spec.model_copy(update={"model": spec.model.model_copy(update={"endpoint": "https://api.openai.com/v1"})})
    plan = egress.plan(_resolved((oauth,), spec=spec, state=state, services={(NS, "crm"): CRM}))
    fields = sorted(gap.message.rsplit(" in ", 1)[-1] for gap in plan.gaps)
    assert fields == [
        "spec.egress of Connector crm",
        "spec.model.egress",
        "spec.store.redis.egress of StatePolicy sessions",
    ]
    assert {gap.host for gap in plan.gaps} == {"login.example.com", "api.openai.com", "cache.example.com"}
    assert plan.reachable == 1  # the CRM's Service


def test_a_provisioned_redis_is_reached_at_its_pods_without_reading_its_service() -> None:
    policy = StatePolicySpec.model_validate({"store": {"type": "redis", "redis": {"provision": True}}})
    state = ResolvedState(
        "sessions", policy, state_store.redis_url("sessions", NS), ("sessions-redis-auth", "password")
    )
    plan = egress.plan(_resolved(state=state))
    assert plan.gaps == [] and plan.rules[1:] == [
        {"to": [_pods(NS, **{names.LABEL_STATE_POLICY: "sessions"})], "ports": [{"protocol": "TCP", "port": "redis"}]}
    ]


def test_egress_ready_tells_the_gap_without_touching_ready() -> None:
    connector = _connector("crm", {"type": "http", "endpoint": "https://crm.example.com", **HTTP_TOOL})
    plan = egress.plan(_resolved((connector,)))
    stable = {
        "metadata": {"name": "bot", "generation": 1},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {names.LABEL_REVISION: "r1"}}}},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
        },
    }
    rollout = RolloutPlan(tracks=[children.Track("stable", "r1", "i")])
    target = ReplicaTarget(spec_replicas=1, count=1)
    first = agent_status(ObservedAgent("bot", NS, {}, stable=stable), rollout, Resolution(), target, plan)
    conds = {c.type: c for c in first.conditions}
    assert conds["Ready"].status is True and first.phase == "Ready"
    assert (conds["EgressReady"].status, conds["EgressReady"].reason) == (False, reasons.EGRESS_CIDRS_MISSING)
    assert ("Warning", reasons.EGRESS_CIDRS_MISSING, conds["EgressReady"].message) in first.events
    stored = {
        "conditions": [
            {"type": c.type, "status": {True: "True", False: "False", None: "Unknown"}[c.status], "reason": c.reason}
            for c in first.conditions
        ]
    }
    again = agent_status(ObservedAgent("bot", NS, stored, stable=stable), rollout, Resolution(), target, plan)
    assert again.events == []  # told once
    fixed = egress_condition(egress.plan(_resolved()))
    assert (fixed.status, fixed.reason) == (True, reasons.EGRESS_ALLOWED)


# Resolve and watch ----------------------------------------------------------------------------------------


def _store(**indexes: dict[Any, list[Any]]) -> Store:
    store = Store()
    store.indexes = {
        name: {}
        for name in (
            "agents_idx",
            "connectors_idx",
            "statepolicies_idx",
            "secrets_idx",
            "configmaps_idx",
            "services_idx",
        )
    }
    for name, entries in indexes.items():
        store.indexes[name] = entries
    return store


def _index(doc: dict[str, Any]) -> dict[Any, Any]:
    meta = doc["metadata"]
    return asyncio.run(services_idx(namespace=meta["namespace"], name=meta["name"], body=doc))  # type: ignore[arg-type]


def test_resolve_reads_and_watches_the_services_the_urls_name() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "crm", "namespace": "billing"},
        "spec": {
            "selector": {"app": "crm"},
            "clusterIP": "10.96.0.7",
            "ports": [{"port": 80, "targetPort": "web", "nodePort": 1}],
        },
    }
    connector = {"type": "http", "endpoint": "http://crm.billing.svc/api", **HTTP_TOOL}
    store = _store(
        connectors_idx={(NS, "crm"): [{"metadata": {"name": "crm"}, "spec": connector}]},
        secrets_idx={(NS, "bot-access"): [{"hash": "h", "keys": ["apiKey"]}]},
        services_idx={key: [value] for key, value in _index(service).items()},
    )
    spec = _rules_agent().model_copy(update={"connectors": [AgentConnectorRef(name="crm")]})
    res = resolve(store, NS, "bot", spec)
    assert ("Service", "billing", "crm") in res.dependencies
    assert res.services == {("billing", "crm"): CRM}
    # A Service event reaches the Connectors naming it, in any namespace.
    assert _connectors_naming(store, "billing", "crm", DOMAIN) == [("Connector", NS, "crm")]
    assert _connectors_naming(store, "billing", "other", DOMAIN) == []


# The API --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["10.0.0.1", "10.0.0.0/33", "crm.example.com", "::ffff:10.0.0.0/104", "010.0.0.0/8"])
def test_a_bad_cidr_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError, match=r"spec\.egress"):
        ConnectorSpec.model_validate({"type": "http", "endpoint": "https://x", "egress": [bad], **HTTP_TOOL})
    with pytest.raises(ValidationError, match=r"spec\.model\.egress"):
        AgentSpec.model_validate(
            {"model": {"provider": "openai-compatible", "name": "m", "endpoint": "https://x", "egress": [bad]},
             "prompt": {"system": "hi"}}
        )  # fmt: skip
    with pytest.raises(ValidationError, match=r"spec\.store\.redis\.egress"):
        StatePolicySpec.model_validate({"store": {"type": "redis", "redis": {"url": "redis://x", "egress": [bad]}}})


def test_every_egress_field_is_checked_by_the_api_server() -> None:
    rules_by_kind = {}
    for info in ALL_KINDS:
        text = json.dumps(build_crd(info))
        rules_by_kind[info.kind] = text.count('"rule": "isCIDR(self)"')
    assert rules_by_kind == {"Agent": 1, "Connector": 1, "StatePolicy": 1}


# The samples -----------------------------------------------------------------------------------------------


def _sample_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(SAMPLES.glob("*.yaml")) + sorted((SAMPLES / "demo").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


DEMO = "agentfleet-demo"


def _sample_world() -> tuple[Store, dict[str, ResolvedAgent], list[dict[str, Any]]]:
    """The samples as the operator's indexes hold them once applied, the Agents resolved, and every pod
    the namespace then runs: (namespace, labels, container ports, what) of each workload."""
    docs = _sample_docs()
    idx: dict[str, dict[Any, list[Any]]] = {}

    def put(index: str, key: tuple[str, str], value: Any) -> None:
        idx.setdefault(index, {})[key] = [value]

    agents = [d for d in docs if d["kind"] == "Agent"]
    for doc in docs:
        key = (doc["metadata"].get("namespace", DEMO), doc["metadata"]["name"])
        kind = doc["kind"]
        if kind in ("Agent", "Connector", "StatePolicy"):
            body = {"metadata": doc["metadata"], "spec": doc["spec"]}
            if kind == "Connector" and doc["spec"]["type"] == "mcp":  # as its discovery leaves it
                body["status"] = {
                    "tools": [{"name": t["name"]} for t in doc["spec"]["tools"]],
                    "conditions": [{"type": "ToolsDiscovered", "status": "True"}],
                }
            put(
                {"Agent": "agents_idx", "Connector": "connectors_idx", "StatePolicy": "statepolicies_idx"}[kind],
                key,
                body,
            )
        elif kind == "Secret":
            put("secrets_idx", key, {"hash": key[1], "keys": sorted(doc["stringData"])})
        elif kind == "Service":
            for service_key, value in _index(doc).items():
                put("services_idx", service_key, value)
    # What the operator generates: the caller keys and the StatePolicy's Secrets.
    for agent in agents:
        put("secrets_idx", (DEMO, names.access_secret(agent["metadata"]["name"])), {"hash": "a", "keys": ["apiKey"]})
    put("secrets_idx", (DEMO, "chat-sessions-redis-auth"), {"hash": "r", "keys": ["password", "redis.conf"]})
    put("secrets_idx", (DEMO, "chat-sessions-session-key"), {"hash": "k", "keys": ["hmacKey"]})
    store = _store(**idx)

    resolved = {}
    for agent in agents:
        name = agent["metadata"]["name"]
        spec = AgentSpec.model_validate(agent["spec"])
        res = resolve(store, DEMO, name, spec)
        assert not res.problems, (name, res.problems)
        resolved[name] = ResolvedAgent(
            name=name,
            namespace=DEMO,
            uid="u",
            spec=spec,
            image="runtime",
            prompt_text=res.prompt_text,
            connectors=tuple(res.connectors),
            state=res.state,
            access_secret=res.access_secret,
            services=res.services,
        )

    pods = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            template = doc["spec"]["template"]
            pods.append(
                (
                    doc["metadata"]["namespace"],
                    template["metadata"]["labels"],
                    template["spec"],
                    doc["metadata"]["name"],
                )
            )
    for name, agent in resolved.items():
        template = children.pod_template(agent, children.Track("stable", "r1", "runtime"))
        pods.append((DEMO, template["metadata"]["labels"], template["spec"], f"agent {name}"))
    policy = StatePolicySpec.model_validate(next(d for d in docs if d["kind"] == "StatePolicy")["spec"])
    redis = state_store.stateful_set("chat-sessions", DEMO, "u", policy, "redis")["spec"]["template"]
    pods.append((DEMO, redis["metadata"]["labels"], redis["spec"], "chat-sessions-redis"))
    world = [
        {
            "namespace": ns,
            "labels": labels,
            "ports": [p for c in spec["containers"] for p in c.get("ports", [])],
            "what": what,
        }
        for ns, labels, spec, what in pods
    ]
    return store, resolved, world


# Where each sample's pods send requests: the workloads behind the Services their URLs name.
CALLS = {
    "support-bot": {"demo-llm", "demo-crm", "chat-sessions-redis"},
    "order-desk": {"demo-mcp"},
    "frontdesk": {"agent billing"},
    "billing": set(),
    "hello": set(),
}


def test_the_samples_reach_every_place_they_call_and_nothing_else() -> None:
    _, resolved, world = _sample_world()
    assert set(resolved) == set(CALLS)
    for name, agent in resolved.items():
        plan = egress.plan(agent)
        assert plan.gaps == [], (name, plan.gaps)
        policy = children.network_policy(agent)
        # DNS: the cluster DNS pods, UDP and TCP.
        dns = {"namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}}
        assert admits(policy, port=53, protocol="UDP", **dns) and admits(policy, port=53, **dns)
        assert not admits(policy, port=53, protocol="UDP", namespace=DEMO, labels={"k8s-app": "kube-dns"})
        reached = set()
        for pod in world:
            if any(
                admits(
                    policy,
                    port=p["containerPort"],
                    port_name=p.get("name"),
                    namespace=pod["namespace"],
                    labels=pod["labels"],
                )
                for p in pod["ports"]
            ):
                reached.add(pod["what"])
        assert reached == CALLS[name], name
        # Nothing outside the cluster.
        for address in ("203.0.113.10", "10.96.0.1", "2001:db8::1"):
            for port in (80, 443, 6379, 8080):
                assert not admits(policy, port=port, ip=address)
