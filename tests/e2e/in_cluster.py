"""The operator as the shipped manifests deploy it, run from its image inside the cluster.

The tier's own operator is a host process, which cannot resolve cluster names; what needs the
operator inside the cluster (leader election between its pods, an analysis querying a Prometheus
Service by name) deploys manifests/base/operator into the test's own namespace with these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from tests.e2e.conftest import ROOT, node_dns_cidrs
from tests.integration.conftest import Kubectl


def render_operator(kubectl: Kubectl, tmp: Path, namespace: str, images: dict[str, str]) -> str:
    """manifests/base/operator as shipped, moved into one namespace: its cluster-scoped RBAC gets a
    name prefix (the shipped one is left as it is for the other operators), its watch is that
    namespace, and it runs the images built here."""
    # The namespace roles and the admission policy are cluster-wide and already installed once
    # (install_crds_and_rbac); prefixed copies per test would pile up and outlive the test.
    cluster_wide = [
        ("rbac.authorization.k8s.io/v1", "ClusterRole", f"agentfleet-{role}") for role in ("view", "edit", "admin")
    ] + [
        ("admissionregistration.k8s.io/v1", kind, "agentfleet-references")
        for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    ]
    dropped = [
        {"patch": yaml.safe_dump({"$patch": "delete", "apiVersion": api, "kind": kind, "metadata": {"name": name}})}
        for api, kind, name in cluster_wide
    ]
    # kustomize takes only relative paths to other kustomizations.
    base = os.path.relpath(ROOT / "manifests" / "base" / "operator", tmp)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [str(base)],
        "namespace": namespace,
        "namePrefix": f"{namespace}-",
        "images": [
            {
                "name": "ghcr.io/agentfleet/agentfleet-operator",
                "newName": images["OPERATOR_IMAGE"].rsplit(":", 1)[0],
                "newTag": images["OPERATOR_IMAGE"].rsplit(":", 1)[1],
            }
        ],
        "patches": [
            *dropped,
            {
                "patch": yaml.safe_dump(
                    {
                        "$patch": "delete",
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": "agentfleet-system"},
                    }
                )
            },
            {
                "target": {"kind": "Deployment"},
                "patch": yaml.safe_dump(
                    [
                        {
                            "op": "replace",
                            "path": "/spec/template/spec/containers/0/args/0",
                            "value": f"--namespace={namespace}",
                        },
                        {
                            "op": "replace",
                            "path": "/spec/template/spec/containers/0/env/1",
                            "value": {"name": "AGENTFLEET_RUNTIME_IMAGE", "value": images["RUNTIME_IMAGE"]},
                        },
                        {
                            "op": "add",
                            "path": "/spec/template/spec/containers/0/env/-",
                            "value": {"name": "AGENTFLEET_DNS_CIDRS", "value": node_dns_cidrs(kubectl)},
                        },
                    ]
                ),
            },
        ],
    }
    (tmp / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return kubectl("kustomize", str(tmp), check=True).stdout


def lease_holder(kubectl: Kubectl, namespace: str) -> str:
    result = kubectl("get", "lease", "-n", namespace, "-o", "json", check=True)
    leases = json.loads(result.stdout)["items"]
    return leases[0]["spec"].get("holderIdentity", "") if leases else ""


def deploy_operator(kubectl: Kubectl, tmp: Path, namespace: str, images: dict[str, str]) -> dict:
    """Apply render_operator's manifests and wait until its pods are available; the Deployment."""
    rendered = render_operator(kubectl, tmp, namespace, images)
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    kubectl("apply", "--server-side", "-f", "-", stdin=rendered, check=True)
    kubectl(
        "rollout",
        "status",
        f"deploy/{deployment['metadata']['name']}",
        "-n",
        namespace,
        "--timeout=180s",
        check=True,
        timeout=200,
    )
    return deployment
