"""The samples' demo pieces (manifests/samples/demo), moved into a test's namespace.

The e2e tests run what a user of `make dev` runs: the same stand-in model and CRM program, the same
Prometheus configuration, here confined to one namespace (a Role instead of the ClusterRole, service
discovery limited to that namespace) and pointed at the images built on this machine.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.e2e.conftest import ROOT

DEMO = ROOT / "manifests" / "samples" / "demo"


def _stand_ins(manifest: str, program: str, namespace: str, image: str) -> list[dict[str, Any]]:
    """A demo manifest's objects in `namespace` on `image`, after the ConfigMap with their program."""
    docs = [d for d in yaml.safe_load_all((DEMO / manifest).read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "Deployment":
            doc["spec"]["template"]["spec"]["containers"][0]["image"] = image
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": program.removesuffix(".py").replace("_", "-"), "namespace": namespace},
        "data": {program: (DEMO / program).read_text()},
    }
    return [config_map, *docs]


def _secret(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def demo_backends(namespace: str, image: str, client_secret: str) -> list[dict[str, Any]]:
    """The demo model and CRM with their program and Secrets (llm-key, crm-creds)."""
    program, *docs = _stand_ins("backends.yaml", "demo_backends.py", namespace, image)
    secrets = [
        _secret(namespace, "crm-creds", clientId="support-bot", clientSecret=client_secret),
        _secret(namespace, "llm-key", apiKey="e2e-llm-key"),
    ]
    return [program, *secrets, *docs]


def namespaced_prometheus(namespace: str, image: str) -> list[dict[str, Any]]:
    """demo/prometheus.yaml in one namespace: it discovers and scrapes that namespace's agent pods."""
    docs = [d for d in yaml.safe_load_all((DEMO / "prometheus.yaml").read_text()) if d and d["kind"] != "Namespace"]
    out: list[dict[str, Any]] = []
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "ClusterRole":
            doc["kind"] = "Role"
        elif doc["kind"] == "ClusterRoleBinding":
            doc["kind"] = "RoleBinding"
            doc["roleRef"]["kind"] = "Role"
            for subject in doc["subjects"]:
                subject["namespace"] = namespace
        elif doc["kind"] == "ConfigMap":
            config = yaml.safe_load(doc["data"]["prometheus.yml"])
            for job in config["scrape_configs"]:
                for sd in job.get("kubernetes_sd_configs", []):
                    sd["namespaces"] = {"names": [namespace]}
            doc["data"]["prometheus.yml"] = yaml.safe_dump(config)
        elif doc["kind"] == "Deployment":
            doc["spec"]["template"]["spec"]["containers"][0]["image"] = image
        out.append(doc)
    return out


def demo_mcp(namespace: str, image: str, token: str) -> list[dict[str, Any]]:
    """The demo MCP server (demo/mcp.yaml, demo_mcp.py) with its token Secret (orders-mcp-token)."""
    program, *docs = _stand_ins("mcp.yaml", "demo_mcp.py", namespace, image)
    return [program, _secret(namespace, "orders-mcp-token", token=token), *docs]
