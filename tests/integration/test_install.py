"""`kubectl apply -k manifests/base` on a real API server: the install users run, applied for real."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def test_base_applies_cleanly_and_its_service_account_has_only_what_it_needs(kubectl: Kubectl) -> None:
    applied = kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "manifests" / "base"))
    assert applied.returncode == 0, applied.stderr
    try:
        deployment = json.loads(
            kubectl(
                "get", "deployment", "agentfleet-operator", "-n", "agentfleet-system", "-o", "json", check=True
            ).stdout
        )
        assert deployment["spec"]["replicas"] == 2
        assert "--leader-elect" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        sa = "system:serviceaccount:agentfleet-system:agentfleet-operator"

        def can(verb: str, resource: str, namespace: str = "default") -> bool:
            resource, _, sub = resource.partition("/")
            extra = [f"--subresource={sub}"] if sub else []
            out = kubectl("auth", "can-i", verb, resource, *extra, "-n", namespace, f"--as={sa}").stdout.strip()
            return out == "yes"

        assert can("watch", "agents.agentfleet.dev") and can("patch", "agents.agentfleet.dev/status")
        assert can("patch", "deployments.apps") and can("create", "leases.coordination.k8s.io", "agentfleet-system")
        # Least privilege: nothing it does not use.
        assert not can("patch", "agents.agentfleet.dev")  # never the user's spec
        assert not can("delete", "secrets")
        assert not can("create", "pods") and not can("get", "nodes") and not can("*", "*")
    finally:
        # Its pods would only be kwok's fakes here; the tests run the operator as a local process.
        kubectl("delete", "deployment", "agentfleet-operator", "-n", "agentfleet-system", "--ignore-not-found")
