"""Deterministic names and labels of everything the operator makes."""

from __future__ import annotations

# The labels, annotations and field manager are the API's (api/identity.py); the builders read them here.
from ..api.identity import ANNOTATION_ABORT as ANNOTATION_ABORT
from ..api.identity import ANNOTATION_PROMOTE as ANNOTATION_PROMOTE
from ..api.identity import ANNOTATION_RETRY as ANNOTATION_RETRY
from ..api.identity import API_VERSION
from ..api.identity import INTENT_ANNOTATIONS as INTENT_ANNOTATIONS
from ..api.identity import LABEL_AGENT as LABEL_AGENT
from ..api.identity import LABEL_MANAGED_BY as LABEL_MANAGED_BY
from ..api.identity import LABEL_REVISION as LABEL_REVISION
from ..api.identity import LABEL_STATE_POLICY as LABEL_STATE_POLICY
from ..api.identity import LABEL_TRACK as LABEL_TRACK
from ..api.identity import MANAGER as MANAGER

CONFIG_DIR = "/etc/agentfleet"
CONFIG_FILE = f"{CONFIG_DIR}/config.json"
SECRETS_DIR = "/var/run/agentfleet/secrets"
RUNTIME_PORT = 8080


def config_map(agent: str, revision: str) -> str:
    return f"{agent}-config-{revision}"


def access_secret(agent: str) -> str:
    return f"{agent}-access"


def canary(agent: str) -> str:
    return f"{agent}-canary"


def stable(agent: str) -> str:
    return f"{agent}-stable"


def redis(state_policy: str) -> str:
    return f"{state_policy}-redis"


def redis_auth_secret(state_policy: str) -> str:
    return f"{state_policy}-redis-auth"


def session_key_secret(state_policy: str) -> str:
    return f"{state_policy}-session-key"


def secret_dir(secret: str) -> str:
    return f"{SECRETS_DIR}/{secret}"


def agent_labels(agent: str) -> dict[str, str]:
    """Labels on every child of an Agent. Never the parent's labels: copying Argo CD's tracking
    label onto children makes Argo CD prune them.

    No app.kubernetes.io/instance either: it is Argo CD's default tracking label, whose value is an
    Application name (or <namespace>_<name>), so any value here can name someone's Application, which
    would then claim and prune these children. agentfleet.dev/agent says which Agent they belong to."""
    return {
        "app.kubernetes.io/name": "agent-runtime",
        "app.kubernetes.io/component": "agent",
        "app.kubernetes.io/part-of": "agentfleet",
        LABEL_MANAGED_BY: MANAGER,
        LABEL_AGENT: agent,
    }


def state_policy_labels(state_policy: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "redis",  # no app.kubernetes.io/instance: see agent_labels
        "app.kubernetes.io/component": "state-store",
        "app.kubernetes.io/part-of": "agentfleet",
        LABEL_MANAGED_BY: MANAGER,
        LABEL_STATE_POLICY: state_policy,
    }


def owner_reference(kind: str, name: str, uid: str) -> dict[str, object]:
    return {"apiVersion": API_VERSION, "kind": kind, "name": name, "uid": uid, "controller": True}


def endpoint(agent: str, namespace: str, tls: bool = False) -> str:
    """The in-cluster URL of an Agent: https when it serves TLS (spec.access.tls)."""
    return f"{'https' if tls else 'http'}://{agent}.{namespace}.svc:{RUNTIME_PORT}"


# The keys of a kubernetes.io/tls Secret (the API server refuses one of that type without both).
TLS_CERT_KEY = "tls.crt"
TLS_KEY_KEY = "tls.key"
