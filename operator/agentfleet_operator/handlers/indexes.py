"""In-memory mirrors of what the reconcilers read. kopf fills every index from its watch stream and
runs no handler before all of them are fully listed. Secrets are kept as hashes and key names only.
The index functions are async because kopf would run plain functions in worker threads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from ..api.identity import (
    GROUP,
    LABEL_MANAGED_BY,
    MANAGER,
    PLURAL_AGENTS,
    PLURAL_CONNECTORS,
    PLURAL_STATE_POLICIES,
    VERSION,
)
from ..api.identity import PREFIX as INTENT_PREFIX
from ..builders.revision import secret_hash

# Kinds the operator creates, watched (by label) to see drift and readiness.
CHILD_KINDS: tuple[tuple[str, str, str, str], ...] = (
    ("", "v1", "services", "Service"),
    ("", "v1", "serviceaccounts", "ServiceAccount"),
    ("", "v1", "configmaps", "ConfigMap"),
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
)
MANAGED = {LABEL_MANAGED_BY: MANAGER}


def plain(value: Any) -> Any:
    """kopf hands out read-only views; indexes keep plain, detached data."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _meta(body: Mapping[str, Any], *, annotations_prefix: str | None = None) -> dict[str, Any]:
    meta = body.get("metadata", {})
    out = {
        k: plain(meta[k])
        for k in (
            "name",
            "namespace",
            "uid",
            "generation",
            "resourceVersion",
            "deletionTimestamp",
            "creationTimestamp",
            "labels",
            "ownerReferences",
        )
        if k in meta
    }
    annotations = meta.get("annotations") or {}
    if annotations_prefix is not None:
        out["annotations"] = {k: v for k, v in annotations.items() if k.startswith(annotations_prefix)}
    else:
        out["annotations"] = plain(annotations)
    return out


def _own(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "metadata": _meta(body, annotations_prefix=INTENT_PREFIX),
        "spec": plain(body.get("spec") or {}),
        "status": plain(body.get("status") or {}),
    }


@kopf.index(GROUP, VERSION, PLURAL_AGENTS)
async def agents_idx(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): _own(body)}


@kopf.index(GROUP, VERSION, PLURAL_CONNECTORS)
async def connectors_idx(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): _own(body)}


@kopf.index(GROUP, VERSION, PLURAL_STATE_POLICIES)
async def statepolicies_idx(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, name): _own(body)}


@kopf.index("", "v1", "secrets")
async def secrets_idx(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    data = body.get("data") or {}
    return {(namespace, name): {"hash": secret_hash(data), "keys": sorted(data)}}


SERVICE_FIELDS = ("selector", "clusterIP", "type", "externalName")
SERVICE_PORT_FIELDS = ("port", "targetPort", "protocol")


@kopf.index("", "v1", "services")
async def services_idx(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    # Every Service (not only ours): an Agent's egress is allowed to the pods of the Services its
    # URLs name. Only the fields that decide which pods and port; a few hundred bytes each.
    spec = body.get("spec") or {}
    trimmed = {key: plain(spec[key]) for key in SERVICE_FIELDS if key in spec}
    trimmed["ports"] = [
        {key: port[key] for key in SERVICE_PORT_FIELDS if key in port} for port in spec.get("ports") or []
    ]
    return {(namespace, name): trimmed}


def _owner_key(namespace: str, body: Mapping[str, Any]) -> tuple[str, str, str] | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            return (namespace, ref["kind"], ref["name"])
    return None


def made_by_us(body: Mapping[str, Any]) -> bool:
    """One of the operator's own children: controlled by one of our kinds *and* labelled with our
    value. The label alone says nothing: Helm sets app.kubernetes.io/managed-by on everything it
    installs, and a user may copy our value by hand; neither makes their ConfigMap ours."""
    labels = body.get("metadata", {}).get("labels") or {}
    return labels.get(LABEL_MANAGED_BY) == MANAGER and _owner_key("", body) is not None


@kopf.index("", "v1", "configmaps")
async def configmaps_idx(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any] | None:
    # Prompts are read from here: every ConfigMap but our own revision ConfigMaps.
    if made_by_us(body):
        return None
    return {(namespace, name): {"data": plain(body.get("data") or {})}}


def _child_indexer(api_version: str, kind: str):  # type: ignore[no-untyped-def]
    async def index(namespace: str, body: kopf.Body, **_: Any) -> dict[Any, Any] | None:
        key = _owner_key(namespace, body)
        if key is None:
            return None
        value = {"apiVersion": api_version, "kind": kind, "metadata": _meta(body)}
        for field in ("spec", "status", "immutable", "automountServiceAccountToken"):
            if field in body:
                value[field] = plain(body[field])
        return {key: value}

    return index


for _group, _version, _plural, _kind in CHILD_KINDS:
    _api_version = f"{_group}/{_version}" if _group else _version
    kopf.index(_group, _version, _plural, labels=MANAGED, id=f"children_{_plural}_idx")(
        _child_indexer(_api_version, _kind)
    )
