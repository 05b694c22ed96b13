"""No Secret value ever reaches a log line, an Event, a status or a ConfigMap.

A full scenario with every kind of credential the operator handles (model key, connector credentials
of each auth type, caller keys, the generated Redis password, the encryption key), a rotation and a
failure or two; then everything the operator produced is searched for every value, raw and base64."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from typing import Any

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import apply, connector, get, ready, secret, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]

VALUES = {
    "llm-key": {"apiKey": "sk-llm-7c1f0a9e2b"},
    "crm-apikey": {"apiKey": "crm-apikey-55d0e1"},
    "crm-basic": {"username": "svc-user-a1", "password": "crm-pass-9f8e7d"},
    "crm-oauth": {"clientId": "client-id-3b2a", "clientSecret": "client-secret-c0ffee"},
    "callers": {"alice": "caller-key-alice-1f", "bob": "caller-key-bob-2e"},
    "state-key": {"key": "enc-key-0123456789abcdef"},
}


def _needles(values: list[str]) -> list[str]:
    out = []
    for value in values:
        out.append(value)
        out.append(base64.b64encode(value.encode()).decode())
    return out


def test_no_secret_value_leaks(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    docs: list[dict[str, Any]] = [secret(name, **data) for name, data in VALUES.items()]
    for name, auth in [
        ("crm-a", {"type": "apiKey", "secretRef": {"name": "crm-apikey"}}),
        ("crm-b", {"type": "basic", "secretRef": {"name": "crm-basic"}}),
        (
            "crm-o",
            {
                "type": "oauth2ClientCredentials",
                "secretRef": {"name": "crm-oauth"},
                "tokenURL": "https://crm.example.com/oauth/token",
            },
        ),
    ]:
        doc = connector(name)
        doc["spec"]["auth"] = auth
        docs.append(doc)
    docs.append(
        {
            "apiVersion": "agentfleet.dev/v1alpha1",
            "kind": "StatePolicy",
            "metadata": {"name": "sessions"},
            "spec": {
                "store": {"type": "redis", "redis": {"provision": True}},
                "encryption": {"keySecretRef": {"name": "state-key", "key": "key"}},
            },
        }
    )
    agent = {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "bot"},
        "spec": {
            "model": {
                "provider": "openai-compatible",
                "name": "m",
                "endpoint": "https://llm.example.com/v1",
                "credentialsSecretRef": {"name": "llm-key", "key": "apiKey"},
            },
            "prompt": {"system": "You help."},
            "connectors": [{"name": "crm-a"}, {"name": "crm-b"}, {"name": "crm-o"}, {"name": "missing"}],
            "statePolicyRef": {"name": "sessions"},
            "access": {"apiKeySecretRef": {"name": "callers"}},
        },
    }
    generated = {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "plain"},
        "spec": {"model": {"provider": "rules", "name": "r"}, "prompt": {"system": "Hi."}},
    }
    apply(kubectl, namespace, *docs, agent, generated)
    # A failure path: the missing Connector must be explained without quoting anything secret.
    wait_for("ConnectorNotFound", lambda: "ConnectorNotFound" in json.dumps(get(kubectl, "agent", "bot", namespace)))
    agent["spec"]["connectors"].pop()
    apply(kubectl, namespace, agent)
    wait_for("plain Ready", lambda: ready(kubectl, "plain", namespace))
    # A rotation, so old and new values both pass through the operator. Before it, the Connector's hash
    # and the Agent's revision of the old value; after it, both must have moved, or the search below
    # would run before the new value ever reached the operator.
    connector_hash = wait_for(
        "crm-b hash", lambda: (get(kubectl, "connector", "crm-b", namespace) or {}).get("status", {}).get("secretHash")
    )
    revision = wait_for(
        "bot revision",
        lambda: (
            (a := get(kubectl, "agent", "bot", namespace))
            and a.get("status", {}).get("observedGeneration") == a["metadata"]["generation"]
            and a["status"].get("revision", {}).get("stable")
        ),
    )
    rotated = secret("crm-basic", username="svc-user-a1", password="crm-pass-rotated-42")
    apply(kubectl, namespace, rotated)
    wait_for(
        "crm-b hash of the rotated Secret",
        lambda: (
            (h := (get(kubectl, "connector", "crm-b", namespace) or {}).get("status", {}).get("secretHash"))
            and h != connector_hash
        ),
    )
    wait_for(
        "bot revision of the rotated Secret",
        lambda: (
            (a := get(kubectl, "agent", "bot", namespace))
            and a["status"].get("revision", {}).get("stable") not in (None, "", revision)
        ),
    )

    values = [v for data in VALUES.values() for v in data.values()] + ["crm-pass-rotated-42"]
    for name in ("plain-access", "sessions-redis-auth"):
        stored = get(kubectl, "secret", name, namespace)
        assert stored is not None, f"generated Secret {name} missing"
        values += [base64.b64decode(v).decode() for v in stored["data"].values()]
    needles = _needles(values)

    produced = {
        "operator log": operator.log_path.read_text(errors="replace"),
        "events": kubectl("get", "events", "-n", namespace, "-o", "json", check=True).stdout,
        "configmaps": kubectl("get", "configmaps", "-n", namespace, "-o", "json", check=True).stdout,
        "statuses": json.dumps(
            [
                o.get("status")
                for o in json.loads(
                    kubectl("get", "agents,connectors,statepolicies", "-n", namespace, "-o", "json", check=True).stdout
                )["items"]
            ]
        ),
        "deployments": kubectl("get", "deployments,statefulsets", "-n", namespace, "-o", "json", check=True).stdout,
    }
    assert json.loads(produced["events"])["items"], "no events at all: the search would prove nothing"
    assert "config.json" in produced["configmaps"], "no runtime config rendered: the search would prove nothing"
    for where, text in produced.items():
        leaked = [n for n in needles if n in text]
        assert not leaked, f"secret material in {where}: {len(leaked)} value(s)"
