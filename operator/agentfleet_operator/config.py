"""Every setting of the operator, parsed once at start-up from its flags and its environment.

This is the only module that reads the operator's environment variables: the Deployment manifests
set some of them (AGENTFLEET_RUNTIME_IMAGE, POD_NAMESPACE) and the tests others (AGENTFLEET_LOG_WRITES),
so each stays accepted exactly as before. Everything below main.py gets its settings from the one
`OperatorConfig` handed down through kopf's memo, never from `os.environ`.

It imports nothing of the operator, so every layer may read it (`.importlinter` keeps it that way).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_RUNTIME_IMAGE = "ghcr.io/agentfleet/agentfleet-runtime:0.1.0"
DEFAULT_REDIS_IMAGE = "redis:7.2-alpine"
# The cluster DNS most distributions run: CoreDNS pods labelled as kube-dns was, in kube-system.
DEFAULT_DNS_NAMESPACE = "kube-system"
DEFAULT_DNS_POD_SELECTOR = "k8s-app=kube-dns"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
# Where the Prometheus Operator's and the samples' Prometheus run.
DEFAULT_METRICS_NAMESPACES = ("monitoring",)

_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _labels(variable: str, text: str) -> tuple[tuple[str, str], ...]:
    """`key=value,key=value` (a label selector of equalities only); empty: none."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value) or len(value) > 63:
            raise ValueError(f"{variable}: {item!r} is not a label key=value")
        pairs.append((key, value))
    return tuple(sorted(set(pairs)))


def _cidrs(variable: str, text: str) -> tuple[str, ...]:
    """Comma-separated CIDRs, canonical (203.0.113.7/24 is 203.0.113.0/24, as a NetworkPolicy reads it)."""
    found = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            if "/" not in item:
                raise ValueError
            found.add(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{variable}: {item!r} is not a CIDR such as 10.96.0.10/32") from None
    return tuple(sorted(found))


@dataclass(frozen=True)
class OperatorConfig:
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    redis_image: str = DEFAULT_REDIS_IMAGE
    workers: int = 8  # concurrent reconciles
    # Troubleshooting aid: log every write request the client sends (never bodies).
    log_writes: bool = False
    health_port: int = 8081  # /healthz and /readyz; 0 = off
    leader_elect: bool = False
    lease_seconds: int = 15
    lease_namespace: str = "agentfleet-system"
    # Who this process is, to kopf and to the Lease; unique per process, as a pod may restart in place.
    identity: str = "agentfleet-operator"
    # The Events' reportingInstance: the pod's name.
    reporting_instance: str = "agentfleet-operator"
    # An external Redis is dialled this often (and on every change of the policy or its Secret).
    store_probe_seconds: float = 15.0
    store_probe_timeout: float = 3.0
    # An MCP Connector's server is asked for its tools this often (and on every change of the
    # Connector or its Secret); each discovery has the Connector's own timeoutSeconds.
    mcp_discovery_seconds: float = 60.0
    # Where the Agents' pods resolve names: their NetworkPolicy allows DNS (UDP and TCP 53) to these
    # pods and addresses only. Pods of dns_pod_labels in dns_namespace (none when empty), and
    # dns_cidrs for a resolver that is not such a pod (NodeLocal DNSCache, a host process).
    dns_namespace: str = DEFAULT_DNS_NAMESPACE
    dns_pod_labels: tuple[tuple[str, str], ...] = (("k8s-app", "kube-dns"),)
    dns_cidrs: tuple[str, ...] = ()
    # The cluster's DNS domain: <svc>.<ns>.svc.<domain> names a Service (the kubelet's clusterDomain).
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    # Namespaces whose pods may reach the Agents' port besides their own namespace and
    # access.allowedNamespaces: where Prometheus runs, so /metrics (and with it the canary analysis)
    # keeps working where NetworkPolicies are enforced. Empty: none.
    metrics_namespaces: tuple[str, ...] = DEFAULT_METRICS_NAMESPACES

    @classmethod
    def parse(
        cls,
        *,
        health_port: int,
        leader_elect: bool,
        lease_seconds: int,
        runtime_image: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> OperatorConfig:
        """Flags win over the environment, as they always did (main.py once copied them into it)."""
        env = os.environ if environ is None else environ
        hostname = env.get("HOSTNAME") or socket.gethostname()
        dns_namespace = env.get("AGENTFLEET_DNS_NAMESPACE", DEFAULT_DNS_NAMESPACE).strip()
        if not _DNS_LABEL.match(dns_namespace):
            raise ValueError(f"AGENTFLEET_DNS_NAMESPACE: {dns_namespace!r} is not a namespace name")
        dns_pods = _labels(
            "AGENTFLEET_DNS_POD_SELECTOR", env.get("AGENTFLEET_DNS_POD_SELECTOR", DEFAULT_DNS_POD_SELECTOR)
        )
        dns_cidrs = _cidrs("AGENTFLEET_DNS_CIDRS", env.get("AGENTFLEET_DNS_CIDRS", ""))
        if not dns_pods and not dns_cidrs:
            # An egress rule with no peer allows every address: refuse rather than open DNS to all.
            raise ValueError("AGENTFLEET_DNS_POD_SELECTOR and AGENTFLEET_DNS_CIDRS are both empty: name the DNS")
        metrics_namespaces = tuple(
            sorted({n.strip() for n in env.get("AGENTFLEET_METRICS_NAMESPACES", "monitoring").split(",") if n.strip()})
        )
        for namespace in metrics_namespaces:
            if not _DNS_LABEL.match(namespace):
                raise ValueError(f"AGENTFLEET_METRICS_NAMESPACES: {namespace!r} is not a namespace name")
        domain = env.get("AGENTFLEET_CLUSTER_DOMAIN", DEFAULT_CLUSTER_DOMAIN).strip().strip(".").lower()
        if not domain or not all(_DNS_LABEL.match(label) for label in domain.split(".")):
            raise ValueError(f"AGENTFLEET_CLUSTER_DOMAIN: {domain!r} is not a DNS domain")
        return cls(
            runtime_image=runtime_image or env.get("AGENTFLEET_RUNTIME_IMAGE", DEFAULT_RUNTIME_IMAGE),
            redis_image=env.get("AGENTFLEET_REDIS_IMAGE", DEFAULT_REDIS_IMAGE),
            workers=int(env.get("AGENTFLEET_WORKERS", "8")),
            log_writes=env.get("AGENTFLEET_LOG_WRITES") == "1",
            health_port=health_port,
            leader_elect=leader_elect or env.get("AGENTFLEET_LEADER_ELECT") == "1",
            # --lease-seconds counts only with --leader-elect; otherwise the environment's value does.
            lease_seconds=lease_seconds if leader_elect else int(env.get("AGENTFLEET_LEASE_SECONDS", "15")),
            lease_namespace=env.get("POD_NAMESPACE", "agentfleet-system"),
            identity=f"{hostname}-{os.getpid()}",
            reporting_instance=env.get("HOSTNAME", "agentfleet-operator"),
            mcp_discovery_seconds=float(env.get("AGENTFLEET_MCP_DISCOVERY_SECONDS", "60")),
            dns_namespace=dns_namespace,
            dns_pod_labels=dns_pods,
            dns_cidrs=dns_cidrs,
            cluster_domain=domain,
            metrics_namespaces=metrics_namespaces,
        )
