"""Deterministic names and labels of everything the operator makes."""

from __future__ import annotations

from ..api.base import API_VERSION

MANAGER = "agentfleet"  # server-side apply field manager and managed-by label value
LABEL_AGENT = "agentfleet.dev/agent"
LABEL_REVISION = "agentfleet.dev/revision"
LABEL_TRACK = "agentfleet.dev/track"
LABEL_STATE_POLICY = "agentfleet.dev/statepolicy"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
ANNOTATION_PROMOTE = "agentfleet.dev/promote"
ANNOTATION_ABORT = "agentfleet.dev/abort"
ANNOTATION_RETRY = "agentfleet.dev/retry"
INTENT_ANNOTATIONS = {"promote": ANNOTATION_PROMOTE, "abort": ANNOTATION_ABORT, "retry": ANNOTATION_RETRY}

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


def endpoint(agent: str, namespace: str) -> str:
    return f"http://{agent}.{namespace}.svc:{RUNTIME_PORT}"
