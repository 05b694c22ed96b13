"""The children of one Agent: ServiceAccount, revision ConfigMap, access Secret, Deployments,
Services, HPA, PDB and NetworkPolicy. Every field of a child is decided in this file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..api.agent import AgentSpec
from ..api.identity import ANNOTATION_IMAGE, ANNOTATION_MOUNTS, ANNOTATION_TLS
from . import egress, names
from .inputs import ResolvedAgent

REVISION_HISTORY = 3  # revision ConfigMaps kept beyond the ones in use (rollback and `history`)


@dataclass(frozen=True)
class Track:
    """One Deployment's worth of pods at one revision. The stable track of a canary may run an
    older revision than the spec asks for, so a track carries its own image and Secret mounts."""

    name: str  # "stable" or "canary"
    revision: str
    image: str
    mounts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    replicas: int | None = None  # None: an HPA owns the count
    tls: bool = False  # its pods serve HTTPS (spec.access.tls when the revision was made)


def _meta(agent: ResolvedAgent, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": agent.namespace,
        "labels": labels or names.agent_labels(agent.name),
        "ownerReferences": [names.owner_reference("Agent", agent.name, agent.uid)],
    }


def service_account(agent: ResolvedAgent) -> dict[str, Any]:
    # Agent pods never talk to the Kubernetes API; no token is mounted.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(agent, agent.name),
        "automountServiceAccountToken": False,
    }


def revision_config_map(agent: ResolvedAgent, track: Track, config: dict[str, Any]) -> dict[str, Any]:
    """Immutable and named by revision: a pod always reads exactly the config its revision hashed.
    Image and Secret mounts ride along as annotations so an older revision can be rebuilt as is."""
    meta = _meta(
        agent,
        names.config_map(agent.name, track.revision),
        names.agent_labels(agent.name) | {names.LABEL_REVISION: track.revision},
    )
    meta["annotations"] = {
        ANNOTATION_IMAGE: track.image,
        ANNOTATION_MOUNTS: json.dumps({k: list(v) for k, v in sorted(track.mounts.items())}, sort_keys=True),
    }
    if track.tls:
        meta["annotations"][ANNOTATION_TLS] = "true"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "immutable": True,
        "data": {"config.json": json.dumps(config, sort_keys=True, indent=1)},
    }


def track_from_config_map(config_map: dict[str, Any], name: str, replicas: int | None) -> Track:
    annotations = config_map.get("metadata", {}).get("annotations", {})
    mounts = json.loads(annotations.get(ANNOTATION_MOUNTS, "{}"))
    return Track(
        name=name,
        revision=config_map["metadata"]["labels"][names.LABEL_REVISION],
        image=annotations.get(ANNOTATION_IMAGE, ""),
        mounts={k: tuple(v) for k, v in mounts.items()},
        replicas=replicas,
        tls=annotations.get(ANNOTATION_TLS) == "true",
    )


# Time for the endpoint removal to reach every node's proxy before the runtime stops accepting.
PRESTOP_SLEEP_SECONDS = 5


def access_secret(agent: ResolvedAgent, key: str) -> dict[str, Any]:
    """Generated once with a random caller key; the operator never rewrites an existing one."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(agent, names.access_secret(agent.name)),
        "type": "Opaque",
        "stringData": {"apiKey": key},
    }


def _pod_labels(agent: ResolvedAgent, track: Track) -> dict[str, str]:
    return names.agent_labels(agent.name) | {names.LABEL_TRACK: track.name, names.LABEL_REVISION: track.revision}


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources(spec: AgentSpec) -> dict[str, Any]:
    if spec.resources is None:
        return {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    out: dict[str, Any] = {}
    if spec.resources.requests:
        out["requests"] = {k: str(v) for k, v in spec.resources.requests.items()}
    if spec.resources.limits:
        out["limits"] = {k: str(v) for k, v in spec.resources.limits.items()}
    return out


def _secret_volume_name(secret: str) -> str:
    return f"secret-{secret}"[:63].rstrip("-.")


def _probe(path: str, track: Track) -> dict[str, Any]:
    """The kubelet's HTTP check; over HTTPS when the pods serve TLS (the kubelet does not verify the
    certificate, so a rotation never fails a probe)."""
    probe: dict[str, Any] = {"path": path, "port": "http"}
    if track.tls:
        probe["scheme"] = "HTTPS"
    return probe


def pod_template(agent: ResolvedAgent, track: Track) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": names.config_map(agent.name, track.revision)}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": names.CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    for secret, keys in sorted(track.mounts.items()):
        source: dict[str, Any] = {"secretName": secret, "defaultMode": 0o440}
        if keys:  # only the keys the runtime reads; an access Secret is mounted whole (every key is a key)
            source["items"] = [{"key": key, "path": key} for key in sorted(keys)]
        volumes.append({"name": _secret_volume_name(secret), "secret": source})
        mounts.append({"name": _secret_volume_name(secret), "mountPath": names.secret_dir(secret), "readOnly": True})
    container = {
        "name": "agent",
        "image": track.image,
        "command": ["agentfleet-runtime"],
        "args": ["--config", names.CONFIG_FILE],
        "ports": [{"name": "http", "containerPort": names.RUNTIME_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": _probe("/readyz", track), "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {
            "httpGet": _probe("/healthz", track),
            "periodSeconds": 10,
            "failureThreshold": 3,
            "initialDelaySeconds": 5,
        },
        "resources": _resources(agent.spec),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
        # A deleted pod leaves the Service's endpoints a moment after it is told to stop (kube-proxy
        # and every other node learn it through a watch); serving on meanwhile is what makes a rolling
        # update or a canary's end lose no request (tests/e2e: without it, ~2% of requests were refused
        # or timed out). The kubelet's own sleep action: the image needs no sleep binary.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": agent.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    scheduling = agent.spec.pod_template
    if scheduling:
        if scheduling.node_selector:
            pod_spec["nodeSelector"] = dict(scheduling.node_selector)
        if scheduling.tolerations:
            pod_spec["tolerations"] = [t.to_wire() for t in scheduling.tolerations]
        if scheduling.priority_class_name:
            pod_spec["priorityClassName"] = scheduling.priority_class_name
        if scheduling.affinity:
            pod_spec["affinity"] = scheduling.affinity
    return {"metadata": {"labels": _pod_labels(agent, track)}, "spec": pod_spec}


def deployment(agent: ResolvedAgent, track: Track) -> dict[str, Any]:
    name = agent.name if track.name == "stable" else names.canary(agent.name)
    selector = {names.LABEL_AGENT: agent.name, names.LABEL_TRACK: track.name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "revisionHistoryLimit": 2,
        # Surge one pod and never drop below the desired count while rolling (kagent does the same).
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": pod_template(agent, track),
    }
    if track.replicas is not None:  # left out while an HPA owns the count, so the two never fight
        spec["replicas"] = track.replicas
    labels = names.agent_labels(agent.name) | {names.LABEL_TRACK: track.name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(agent, name, labels), "spec": spec}


def replica_hand_over(agent: ResolvedAgent, replicas: int) -> dict[str, Any]:
    """Only the stable Deployment's count, applied by the hand-over manager (builders/replicas.py)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": agent.name, "namespace": agent.namespace},
        "spec": {"replicas": replicas},
    }


def service(agent: ResolvedAgent, name: str, track: str | None) -> dict[str, Any]:
    selector = {names.LABEL_AGENT: agent.name}
    if track:
        selector[names.LABEL_TRACK] = track
    port: dict[str, Any] = {"name": "http", "port": names.RUNTIME_PORT, "targetPort": "http", "protocol": "TCP"}
    if agent.tls_secret:
        # The container port keeps its name (probes and the PodMonitor use it); the Service says what
        # it speaks, for meshes and gateways (appProtocol) and for people (the port's name).
        port = {**port, "name": "https", "appProtocol": "https"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(agent, name),
        "spec": {"type": "ClusterIP", "selector": selector, "ports": [port]},
    }


def horizontal_pod_autoscaler(agent: ResolvedAgent) -> dict[str, Any] | None:
    scaling = agent.spec.autoscaling
    if scaling is None:
        return None
    metrics: list[dict[str, Any]] = []
    if scaling.target_cpu_utilization is not None or scaling.target_inflight_requests is None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization or 80},
                },
            }
        )
    if scaling.target_inflight_requests is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "agent_inflight_requests"},
                    "target": {"type": "AverageValue", "averageValue": str(scaling.target_inflight_requests)},
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(agent, agent.name),
        "spec": {
            # The stable Deployment only: one HPA averaging canary and stable pods pushes stable to its maximum.
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": agent.name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
        },
    }


def desired_stable_replicas(spec: AgentSpec) -> int:
    return spec.autoscaling.min_replicas if spec.autoscaling else spec.replicas


def pod_disruption_budget(agent: ResolvedAgent, replicas: int | None = None) -> dict[str, Any] | None:
    """replicas: the stable count when it is not the spec's (kept after autoscaling was removed)."""
    if (desired_stable_replicas(agent.spec) if replicas is None else replicas) <= 1:
        return None  # a PDB on a single pod would block node drains forever
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(agent, agent.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {names.LABEL_AGENT: agent.name, names.LABEL_TRACK: "stable"}},
        },
    }


def network_policy(agent: ResolvedAgent) -> dict[str, Any]:
    peers: list[dict[str, Any]] = [{"podSelector": {}}]  # the Agent's own namespace
    allowed = agent.spec.access.allowed_namespaces if agent.spec.access else None
    if allowed:
        peers.append(
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(set(allowed))}
                    ]
                }
            }
        )
    ingress = [{"from": peers, "ports": [{"protocol": "TCP", "port": names.RUNTIME_PORT}]}]
    scrapers = sorted(set(agent.egress_settings.metrics_namespaces) - {agent.namespace})
    if scrapers:
        # Prometheus scrapes /metrics on the same port; the operator's config names where it runs.
        ingress.append(
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": scrapers}
                            ]
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": names.RUNTIME_PORT}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(agent, agent.name),
        "spec": {
            "podSelector": {"matchLabels": {names.LABEL_AGENT: agent.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            # DNS, and each place the pods call, nothing else (builders/egress.py).
            "egress": egress.plan(agent).rules,
        },
    }
