"""The operator's settings: flags win over the environment, which stays accepted as before."""

from __future__ import annotations

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
