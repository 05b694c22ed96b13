"""The operator's settings: flags win over the environment, which stays accepted as before."""

from __future__ import annotations

import pytest
from agentfleet_operator.config import DEFAULT_REDIS_IMAGE, DEFAULT_RUNTIME_IMAGE, OperatorConfig

FLAGS = {"health_port": 8081, "leader_elect": False, "lease_seconds": 15, "runtime_image": None}


def test_defaults_without_environment() -> None:
    config = OperatorConfig.parse(**FLAGS, environ={"HOSTNAME": "op-0"})
    assert (config.runtime_image, config.redis_image, config.workers) == (DEFAULT_RUNTIME_IMAGE, DEFAULT_REDIS_IMAGE, 8)
    assert not config.log_writes and not config.leader_elect
    assert config.lease_namespace == "agentfleet-system"
    assert config.identity.startswith("op-0-") and config.reporting_instance == "op-0"


def test_environment_is_read() -> None:
    config = OperatorConfig.parse(
        **FLAGS,
        environ={
            "AGENTFLEET_RUNTIME_IMAGE": "runtime:1",
            "AGENTFLEET_REDIS_IMAGE": "redis:1",
            "AGENTFLEET_WORKERS": "3",
            "AGENTFLEET_LOG_WRITES": "1",
            "AGENTFLEET_LEADER_ELECT": "1",
            "AGENTFLEET_LEASE_SECONDS": "7",
            "POD_NAMESPACE": "ops",
        },
    )
    assert (config.runtime_image, config.redis_image, config.workers) == ("runtime:1", "redis:1", 3)
    assert config.log_writes and config.leader_elect
    assert (config.lease_seconds, config.lease_namespace) == (7, "ops")


def test_flags_win_over_the_environment() -> None:
    env = {"AGENTFLEET_RUNTIME_IMAGE": "runtime:env", "AGENTFLEET_LEASE_SECONDS": "7"}
    config = OperatorConfig.parse(
        health_port=0, leader_elect=True, lease_seconds=30, runtime_image="runtime:flag", environ=env
    )
    assert (config.runtime_image, config.lease_seconds, config.health_port) == ("runtime:flag", 30, 0)


def test_the_cluster_dns_and_domain_default_to_the_common_ones() -> None:
    config = OperatorConfig.parse(**FLAGS, environ={"HOSTNAME": "op-0"})
    assert config.dns_namespace == "kube-system" and config.dns_pod_labels == (("k8s-app", "kube-dns"),)
    assert config.dns_cidrs == () and config.cluster_domain == "cluster.local"


def test_the_cluster_dns_is_configurable_and_checked() -> None:
    env = {
        "AGENTFLEET_DNS_NAMESPACE": "dns",
        "AGENTFLEET_DNS_POD_SELECTOR": "app.kubernetes.io/name=coredns, tier=node",
        "AGENTFLEET_DNS_CIDRS": "169.254.20.10/32,10.250.0.1/24",
        "AGENTFLEET_CLUSTER_DOMAIN": "Corp.Internal.",
    }
    config = OperatorConfig.parse(**FLAGS, environ=env)
    assert config.dns_namespace == "dns"
    assert config.dns_pod_labels == (("app.kubernetes.io/name", "coredns"), ("tier", "node"))
    assert config.dns_cidrs == ("10.250.0.0/24", "169.254.20.10/32")  # canonical, as a policy reads them
    assert config.cluster_domain == "corp.internal"
    host_only = OperatorConfig.parse(
        **FLAGS, environ={"AGENTFLEET_DNS_POD_SELECTOR": "", "AGENTFLEET_DNS_CIDRS": "10.250.0.1/32"}
    )
    assert host_only.dns_pod_labels == () and host_only.dns_cidrs == ("10.250.0.1/32",)
    for bad, variable in [
        ({"AGENTFLEET_DNS_CIDRS": "10.250.0.1"}, "AGENTFLEET_DNS_CIDRS"),
        ({"AGENTFLEET_DNS_POD_SELECTOR": "k8s-app"}, "AGENTFLEET_DNS_POD_SELECTOR"),
        ({"AGENTFLEET_DNS_POD_SELECTOR": ""}, "both empty"),  # egress to DNS anywhere: refused
        ({"AGENTFLEET_DNS_NAMESPACE": "Kube_System"}, "AGENTFLEET_DNS_NAMESPACE"),
        ({"AGENTFLEET_CLUSTER_DOMAIN": "a..b"}, "AGENTFLEET_CLUSTER_DOMAIN"),
    ]:
        with pytest.raises(ValueError, match=variable):
            OperatorConfig.parse(**FLAGS, environ=bad)


def test_the_metrics_namespaces_default_to_monitoring_and_are_checked() -> None:
    assert OperatorConfig.parse(**FLAGS, environ={}).metrics_namespaces == ("monitoring",)
    config = OperatorConfig.parse(**FLAGS, environ={"AGENTFLEET_METRICS_NAMESPACES": " obs , monitoring,obs"})
    assert config.metrics_namespaces == ("monitoring", "obs")
    assert OperatorConfig.parse(**FLAGS, environ={"AGENTFLEET_METRICS_NAMESPACES": ""}).metrics_namespaces == ()
    with pytest.raises(ValueError, match="AGENTFLEET_METRICS_NAMESPACES"):
        OperatorConfig.parse(**FLAGS, environ={"AGENTFLEET_METRICS_NAMESPACES": "Monitoring"})
