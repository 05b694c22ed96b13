"""Every setting of the operator, parsed once at start-up from its flags and its environment.

This is the only module that reads the operator's environment variables: the Deployment manifests
set some of them (AGENTFLEET_RUNTIME_IMAGE, POD_NAMESPACE) and the tests others (AGENTFLEET_LOG_WRITES),
so each stays accepted exactly as before. Everything below main.py gets its settings from the one
`OperatorConfig` handed down through kopf's memo, never from `os.environ`.

It imports nothing of the operator, so every layer may read it (`.importlinter` keeps it that way).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_RUNTIME_IMAGE = "ghcr.io/agentfleet/agentfleet-runtime:0.1.0"
DEFAULT_REDIS_IMAGE = "redis:7.2-alpine"


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
        )
