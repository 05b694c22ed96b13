"""Where an Agent's pods may send traffic: the egress of its NetworkPolicy, decided from the places its
runtime calls (the model, each Connector's endpoint and OAuth2 token URL, Redis) and nothing else.

A NetworkPolicy matches pods and addresses, never host names, so every URL's host is turned into a peer:
  - an IP address: that address (/32, /128);
  - a Service name (`<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, `<svc>.<ns>.svc.<cluster domain>`): the pods
    of the Service's selector in its namespace, on the port the Service sends to (its targetPort, by name
    when it is named: a policy matches the pod's port, after the Service's address was translated);
  - any other host: the CIDRs its owner lists (`Connector.spec.egress`, `Agent.spec.model.egress`,
    `StatePolicy.spec.store.redis.egress`); without them it cannot be reached where policies are
    enforced, and that is reported (a Gap), never hidden.
An agent Connector reaches its target's pods, a provisioned Redis the StatePolicy's Redis pods; DNS goes
to the cluster DNS the operator is configured with (config.py). Pure: the Services are handed in.

The rules are sorted and grouped the same way every time, so a reconcile that finds nothing new
renders the same NetworkPolicy and writes nothing."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..api import reasons
from ..api.agent import AgentSpec
from ..api.connector import ConnectorSpec
from ..config import DEFAULT_CLUSTER_DOMAIN, DEFAULT_DNS_NAMESPACE, OperatorConfig
from . import names, state_store

if TYPE_CHECKING:  # inputs.py imports this module for its types
    from .inputs import ResolvedAgent, ResolvedConnector, ResolvedState

NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace
DNS_PORT = 53
_SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # DNS-1035 label
_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # DNS-1123 label
LOOPBACK_HOSTS = frozenset({"localhost", "localhost.localdomain"})

Port = tuple[str, int | str]  # (protocol, number or the pod's port name)
ServiceKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class EgressSettings:
    """The cluster facts a policy depends on beyond the Agent (config.py): its DNS and its domain, and
    the namespaces whose Prometheus may scrape the pods (the one ingress fact, kept here so the whole
    NetworkPolicy is built from one settings object)."""

    dns_namespace: str = DEFAULT_DNS_NAMESPACE
    dns_pod_labels: tuple[tuple[str, str], ...] = OperatorConfig.dns_pod_labels
    dns_cidrs: tuple[str, ...] = ()
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    metrics_namespaces: tuple[str, ...] = OperatorConfig.metrics_namespaces

    @classmethod
    def from_config(cls, config: OperatorConfig) -> EgressSettings:
        return cls(
            config.dns_namespace,
            config.dns_pod_labels,
            config.dns_cidrs,
            config.cluster_domain,
            config.metrics_namespaces,
        )


# URLs and hosts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    host: str  # lower case, no trailing dot, an IPv6 address without brackets
    port: int


def default_port(scheme: str) -> int:
    """The port a client dials when the URL names none (httpx; redis-py for redis:// and rediss://)."""
    return {"https": 443, "redis": 6379, "rediss": 6379}.get(scheme, 80)


def endpoint(url: str) -> Endpoint | None:
    """Host and port of a URL; None when it has no usable host or port (nothing can be dialled)."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError:
        return None
    host = (parsed.hostname or "").rstrip(".")
    if not host:
        return None
    return Endpoint(host, port or default_port(parsed.scheme.lower()))


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """The pod itself: never leaves its network namespace, so no policy applies."""
    ip = ip_literal(host)
    return ip.is_loopback if ip is not None else host in LOOPBACK_HOSTS


@dataclass(frozen=True)
class ServiceName:
    namespace: str
    name: str
    # True: the name can only mean this Service (it ends in .svc, or is one label). False: `<a>.<b>`,
    # which is Service a in namespace b when that Service exists and an outside host otherwise.
    certain: bool


def service_name(host: str, namespace: str, cluster_domain: str) -> ServiceName | None:
    """The Service a host names, as a pod's resolver (search <ns>.svc.<domain>, svc.<domain>) finds it."""
    if ip_literal(host) is not None or host in LOOPBACK_HOSTS:
        return None
    suffix = f".svc.{cluster_domain}"
    if host.endswith(suffix):
        labels, certain = host[: -len(suffix)].split("."), True
    elif host.endswith(".svc"):
        labels, certain = host[: -len(".svc")].split("."), True
    else:
        labels = host.split(".")
        certain = len(labels) == 1
        if len(labels) == 1:
            labels = [labels[0], namespace]
    if len(labels) != 2:
        return None  # <pod>.<svc>.<ns>.svc, a.b.c: no Service of its own
    name, ns = labels
    if not _SERVICE_NAME.match(name) or not _NAMESPACE_NAME.match(ns):
        return None
    return ServiceName(ns, name, certain)


# Services ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServicePort:
    port: int
    target: int | str  # the pod's port: a number or a container port's name
    protocol: str = "TCP"


@dataclass(frozen=True)
class ServiceView:
    """What the policy needs of a Service (the operator's index keeps no more of it)."""

    selector: tuple[tuple[str, str], ...] = ()
    ports: tuple[ServicePort, ...] = ()
    headless: bool = False  # clusterIP None: clients dial the pods themselves, on the URL's port
    external_name: str | None = None  # type ExternalName: a DNS alias of an outside host

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> ServiceView:
        ports = []
        for entry in spec.get("ports") or []:
            try:
                port = int(entry["port"])
            except (KeyError, TypeError, ValueError):
                continue
            target = entry.get("targetPort", port)
            if isinstance(target, str) and target.isdigit():
                target = int(target)
            if target in (None, "", 0):
                target = port  # the API server's default: the Service's own port
            ports.append(ServicePort(port, target, entry.get("protocol") or "TCP"))
        return cls(
            selector=tuple(sorted((str(k), str(v)) for k, v in (spec.get("selector") or {}).items())),
            ports=tuple(ports),
            headless=spec.get("clusterIP") == "None",
            external_name=spec.get("externalName") if spec.get("type") == "ExternalName" else None,
        )

    def pod_port(self, port: int) -> int | str | None:
        """The pod port a connection to this Service's `port` arrives on; None: the Service has no such port."""
        if self.headless:
            return port
        for entry in self.ports:
            if entry.port == port and entry.protocol == "TCP":
                return entry.target
        return None


# What the pods call -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """One URL the pods call, who sets it, and where the CIDRs of an outside host would be listed."""

    who: str  # e.g. "spec.model.endpoint", "Connector crm", "StatePolicy chat-sessions"
    url: str
    cidrs: tuple[str, ...] = ()
    cidrs_field: str = ""  # e.g. "spec.egress of Connector crm"


@dataclass(frozen=True)
class Gap:
    """A place the pods call that the policy does not let them reach, and why."""

    who: str
    host: str
    reason: str
    message: str


@dataclass(frozen=True)
class Allow:
    peer: str  # one NetworkPolicyPeer, as canonical JSON (hashable, sorts the same every time)
    port: Port


def _peer(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def pods_peer(namespace: str | None, labels: Iterable[tuple[str, str]]) -> str:
    """Pods by labels, in `namespace` (None: the policy's own namespace)."""
    peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(sorted(labels))}}
    if namespace is not None:
        peer["namespaceSelector"] = {"matchLabels": {NAMESPACE_LABEL: namespace}}
    return _peer(peer)


def cidr_peer(cidr: str) -> str:
    """An address block, canonical: 203.0.113.7/24 is 203.0.113.0/24, as a NetworkPolicy reads it."""
    return _peer({"ipBlock": {"cidr": str(ipaddress.ip_network(cidr, strict=False))}})


def connector_needs(name: str, spec: ConnectorSpec) -> list[Need]:
    """The URLs of a Connector (an agent Connector has none: its target's pods are allowed directly)."""
    if spec.type == "agent":
        return []
    where = f"spec.egress of Connector {name}"
    urls = [spec.endpoint] + ([spec.auth.token_url] if spec.auth.token_url else [])
    return [Need(f"Connector {name}", url, tuple(spec.egress), where) for url in urls if url]


def state_need(state: ResolvedState) -> Need | None:
    """The external Redis; a provisioned one is allowed directly (state_allows)."""
    if not state.redis_url or state_store.provisioned(state.spec):
        return None
    redis = state.spec.store.redis
    cidrs = tuple(redis.egress) if redis else ()
    where = f"spec.store.redis.egress of StatePolicy {state.name}"
    return Need(f"StatePolicy {state.name}", state.redis_url, cidrs, where)


def needs(spec: AgentSpec, connectors: Iterable[ResolvedConnector], state: ResolvedState | None) -> list[Need]:
    found = []
    if spec.model.endpoint:
        found.append(Need("spec.model.endpoint", spec.model.endpoint, tuple(spec.model.egress), "spec.model.egress"))
    for connector in connectors:
        found += connector_needs(connector.ref.name, connector.spec)
    if state is not None and (need := state_need(state)) is not None:
        found.append(need)
    return found


def services_read(found: Iterable[Need], namespace: str, cluster_domain: str) -> list[ServiceKey]:
    """The Services these URLs may name: what the resolve step reads (and watches) for them."""
    keys = set()
    for need in found:
        ep = endpoint(need.url)
        ref = service_name(ep.host, namespace, cluster_domain) if ep else None
        if ref is not None:
            keys.add((ref.namespace, ref.name))
    return sorted(keys)


def _outside(need: Need, ep: Endpoint, why: str) -> tuple[list[Allow], list[Gap]]:
    if need.cidrs:
        return [Allow(cidr_peer(cidr), ("TCP", ep.port)) for cidr in need.cidrs], []
    message = (
        f"{need.who}: {why}; a NetworkPolicy cannot name hosts, so the agent's pods cannot reach "
        f"{ep.host}:{ep.port} where NetworkPolicies are enforced: list its addresses (CIDRs) in {need.cidrs_field}"
    )
    return [], [Gap(need.who, ep.host, reasons.EGRESS_CIDRS_MISSING, message)]


def allow(
    need: Need, namespace: str, services: Mapping[ServiceKey, ServiceView], cluster_domain: str
) -> tuple[list[Allow], list[Gap]]:
    """What one URL needs allowed, or why it cannot be."""
    ep = endpoint(need.url)
    if ep is None or is_loopback(ep.host):
        return [], []
    ip = ip_literal(ep.host)
    if ip is not None:
        return [Allow(cidr_peer(f"{ip}/{ip.max_prefixlen}"), ("TCP", ep.port))], []
    ref = service_name(ep.host, namespace, cluster_domain)
    if ref is None:
        return _outside(need, ep, f"{ep.host} is outside the cluster")
    service = services.get((ref.namespace, ref.name))
    label = f"Service {ref.name} in namespace {ref.namespace}"
    if service is None:
        if not ref.certain:
            return _outside(need, ep, f"{ep.host} is outside the cluster (there is no {label})")
        message = f"{need.who}: {label} not found; no egress to {ep.host} until it exists"
        return [], [Gap(need.who, ep.host, reasons.EGRESS_SERVICE_NOT_FOUND, message)]
    if service.external_name is not None:
        return _outside(need, ep, f"{label} is an alias of {service.external_name}, outside the cluster")
    if not service.selector:
        return _outside(need, ep, f"{label} has no selector, so the addresses behind it are not known")
    pod_port = service.pod_port(ep.port)
    if pod_port is None:
        message = f"{need.who}: {label} has no TCP port {ep.port}; no egress to {ep.host}:{ep.port}"
        return [], [Gap(need.who, ep.host, reasons.EGRESS_SERVICE_PORT_NOT_FOUND, message)]
    return [Allow(pods_peer(ref.namespace, service.selector), ("TCP", pod_port))], []


def agent_allows(connectors: Iterable[ResolvedConnector]) -> list[Allow]:
    """An agent Connector's target: that Agent's pods (of this namespace), on the runtime's port."""
    return [
        Allow(pods_peer(None, [(names.LABEL_AGENT, c.target.name)]), ("TCP", names.RUNTIME_PORT))
        for c in connectors
        if c.target is not None
    ]


def state_allows(state: ResolvedState | None, namespace: str) -> list[Allow]:
    """A provisioned Redis: the pods and port of the Service the operator makes for it (state_store)."""
    if state is None or not state.redis_url or not state_store.provisioned(state.spec):
        return []
    ep = endpoint(state.redis_url)
    service = ServiceView.from_spec(state_store.service(state.name, namespace, "")["spec"])
    pod_port = service.pod_port(ep.port) if ep else None
    if pod_port is None:
        return []
    return [Allow(pods_peer(namespace, service.selector), ("TCP", pod_port))]


# The rules --------------------------------------------------------------------------------------------


def _port_key(port: Port) -> tuple[str, int, int | str]:
    protocol, value = port
    return (protocol, 0, value) if isinstance(value, int) else (protocol, 1, value)


def dns_rule(settings: EgressSettings) -> dict[str, Any]:
    peers = [cidr_peer(cidr) for cidr in settings.dns_cidrs]
    if settings.dns_pod_labels:
        peers.append(pods_peer(settings.dns_namespace, settings.dns_pod_labels))
    if not peers:  # a rule without peers would allow every address; config.py refuses this already
        raise ValueError("the cluster DNS is neither pods nor addresses")
    return {
        "to": [json.loads(p) for p in sorted(set(peers))],
        "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}],
    }


def rules(allows: Iterable[Allow]) -> list[dict[str, Any]]:
    """Peers allowed on the same ports share one rule: exactly the (peer, port) pairs asked for, no more,
    in one order for the same input."""
    ports_of: dict[str, set[Port]] = defaultdict(set)
    for item in allows:
        ports_of[item.peer].add(item.port)
    peers_of: dict[tuple[Port, ...], list[str]] = defaultdict(list)
    for peer, ports in ports_of.items():
        peers_of[tuple(sorted(ports, key=_port_key))].append(peer)
    out = []
    for ports in sorted(peers_of, key=lambda ps: [_port_key(p) for p in ps]):
        out.append(
            {
                "to": [json.loads(p) for p in sorted(peers_of[ports])],
                "ports": [{"protocol": protocol, "port": value} for protocol, value in ports],
            }
        )
    return out


@dataclass
class EgressPlan:
    rules: list[dict[str, Any]] = field(default_factory=list)  # DNS first
    gaps: list[Gap] = field(default_factory=list)
    reachable: int = 0  # the places the pods call that the rules allow (DNS aside)


def plan(agent: ResolvedAgent) -> EgressPlan:
    """The egress rules of an Agent's NetworkPolicy and what they leave out."""
    domain = agent.egress_settings.cluster_domain
    allowed = agent_allows(agent.connectors) + state_allows(agent.state, agent.namespace)
    reachable = len(allowed)
    gaps: list[Gap] = []
    for need in needs(agent.spec, agent.connectors, agent.state):
        more, missing = allow(need, agent.namespace, agent.services, domain)
        allowed += more
        gaps += missing
        reachable += bool(more)
    return EgressPlan([dns_rule(agent.egress_settings), *rules(allowed)], gaps, reachable)


def connector_gaps(
    name: str, spec: ConnectorSpec, namespace: str, services: Mapping[ServiceKey, ServiceView], domain: str
) -> list[Gap]:
    """What a Connector's own URLs leave out, whichever Agent uses it (a Connector serves its namespace)."""
    return [gap for need in connector_needs(name, spec) for gap in allow(need, namespace, services, domain)[1]]


def summary(gaps: list[Gap], limit: int = 3) -> str:
    """One message for several gaps: the first few, and how many more."""
    text = "; ".join(gap.message for gap in gaps[:limit])
    if len(gaps) > limit:
        text += f"; and {len(gaps) - limit} more"
    return text
