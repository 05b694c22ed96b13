"""The Redis the operator runs for a StatePolicy with `provision: true`: StatefulSet, Service and
the generated password Secret, all owned by the StatePolicy."""

from __future__ import annotations

from typing import Any

from ..api.statepolicy import StatePolicySpec
from . import names

REDIS_PORT = 6379
PASSWORD_KEY = "password"
SESSION_KEY = "hmacKey"
CONFIG_KEY = "redis.conf"


def provisioned(spec: StatePolicySpec) -> bool:
    return spec.store.type == "redis" and spec.store.redis is not None and spec.store.redis.provision


def redis_url(state_policy: str, namespace: str) -> str:
    return f"redis://{names.redis(state_policy)}.{namespace}.svc:{REDIS_PORT}/0"


def _meta(name: str, namespace: str, state_policy: str, uid: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": names.state_policy_labels(state_policy),
        "ownerReferences": [names.owner_reference("StatePolicy", state_policy, uid)],
    }


def password_secret(state_policy: str, namespace: str, uid: str, password: str) -> dict[str, Any]:
    """Generated once. The password reaches Redis through a config file in this Secret, so it is
    never in the process arguments or the pod spec."""
    config = f"requirepass {password}\nappendonly yes\nappendfsync everysec\ndir /data\nport {REDIS_PORT}\n"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(names.redis_auth_secret(state_policy), namespace, state_policy, uid),
        "type": "Opaque",
        "stringData": {PASSWORD_KEY: password, CONFIG_KEY: config},
    }


def session_key_secret(state_policy: str, namespace: str, uid: str, key: str) -> dict[str, Any]:
    """Generated once for a Redis store: the key the agents hash session ids with (HMAC-SHA256) into
    Redis key names, so whoever can read Redis cannot confirm a guessed session id (often an e-mail
    address) by hashing it. Rotating it by hand starts every session afresh."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(names.session_key_secret(state_policy), namespace, state_policy, uid),
        "type": "Opaque",
        "stringData": {SESSION_KEY: key},
    }


def service(state_policy: str, namespace: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(names.redis(state_policy), namespace, state_policy, uid),
        "spec": {
            "selector": {names.LABEL_STATE_POLICY: state_policy},
            "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}],
        },
    }


def stateful_set(state_policy: str, namespace: str, uid: str, spec: StatePolicySpec, image: str) -> dict[str, Any]:
    storage = spec.store.redis.storage_size if spec.store.redis else "1Gi"
    name = names.redis(state_policy)
    labels = names.state_policy_labels(state_policy)
    container = {
        "name": "redis",
        "image": image,
        "command": ["redis-server", f"/etc/redis/{CONFIG_KEY}"],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10, "initialDelaySeconds": 10},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "config", "mountPath": "/etc/redis", "readOnly": True},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(name, namespace, state_policy, uid),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": {names.LABEL_STATE_POLICY: state_policy}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 999,
                        "runAsGroup": 999,
                        "fsGroup": 999,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "config",
                            "secret": {
                                "secretName": names.redis_auth_secret(state_policy),
                                "defaultMode": 0o440,
                                "items": [{"key": CONFIG_KEY, "path": CONFIG_KEY}],
                            },
                        }
                    ],
                },
            },
            # AOF on a persistent volume: a restarted Redis still has every session.
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": labels},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
                }
            ],
        },
    }
