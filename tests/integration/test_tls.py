"""TLS on the real control plane: an Agent with spec.access.tls waits for its kubernetes.io/tls Secret
(SecretNotFound, then SecretKeyMissing for a Secret without the key), recovers when it is right, and
gets the Secret as a volume, probes over HTTPS, an https Service port and endpoint; renewing the
certificate (what cert-manager does) reconciles the Agent but writes nothing and keeps the revision,
so no pod restarts. A model CA bundle, by contrast, is part of the revision."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from tests.fakes.tls import TestCA
from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import (
    apply,
    condition,
    get,
    queue_drained,
    ready,
    reconciles,
    rules_agent,
    secret,
    wait_for,
)

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
SECRETS = "/var/run/agentfleet/secrets"


def tls_secret(name: str, ca: TestCA, host: str) -> dict[str, Any]:
    issued = ca.issue(hosts=(host,))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": issued.cert_pem.decode(), "tls.key": issued.key_pem.decode()},
    }


def _not_ready(kubectl: Kubectl, name: str, namespace: str, reason: str) -> dict[str, Any] | None:
    agent = get(kubectl, "agent", name, namespace)
    cond = condition(agent, "Ready")
    return cond if cond.get("status") == "False" and cond.get("reason") == reason else None


def test_an_agent_serving_tls_waits_for_its_secret_and_a_renewal_rolls_nothing(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    ca = TestCA()
    host = f"secure.{namespace}.svc"
    apply(kubectl, namespace, rules_agent("secure", access={"tls": {"secretRef": {"name": "secure-tls"}}}))
    missing = wait_for("SecretNotFound", lambda: _not_ready(kubectl, "secure", namespace, "SecretNotFound"))
    assert f"Secret secure-tls (serving certificate) not found in namespace {namespace}" in missing["message"]

    # An Opaque Secret without the key: named. Then the real kubernetes.io/tls Secret: it recovers.
    apply(kubectl, namespace, secret("secure-tls", **{"tls.crt": "x"}))
    wrong = wait_for("SecretKeyMissing", lambda: _not_ready(kubectl, "secure", namespace, "SecretKeyMissing"))
    assert "has no key tls.key" in wrong["message"]
    kubectl("delete", "secret", "secure-tls", "-n", namespace, check=True)
    apply(kubectl, namespace, tls_secret("secure-tls", ca, host))
    agent = wait_for("Ready", lambda: ready(kubectl, "secure", namespace), timeout=120)
    assert agent["status"]["endpoint"] == f"https://{host}:8080"
    revision = agent["status"]["revision"]["stable"]

    config_map = get(kubectl, "configmap", f"secure-config-{revision}", namespace)
    assert config_map is not None and config_map["metadata"]["annotations"]["agentfleet.dev/tls"] == "true"
    server = json.loads(config_map["data"]["config.json"])["server"]
    assert server["tls"] == {"certFile": f"{SECRETS}/secure-tls/tls.crt", "keyFile": f"{SECRETS}/secure-tls/tls.key"}

    deployment = get(kubectl, "deployment", "secure", namespace)
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "secure-tls")
    assert volume["secret"]["items"] == [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert mount == {"name": volume["name"], "mountPath": f"{SECRETS}/secure-tls", "readOnly": True}
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    service = get(kubectl, "service", "secure", namespace)
    assert service is not None
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["appProtocol"], port["port"]) == ("https", "https", 8080)

    # cert-manager renews the certificate: the Agent is looked at again, and nothing is written.
    wait_for("operator idle", lambda: queue_drained(operator))
    writes = [w for w in operator.writes_in(namespace) if "/deployments/" in w or "/configmaps/" in w]
    before = reconciles(operator, "Agent")
    generation = deployment["metadata"]["generation"]
    renewed = tls_secret("secure-tls", ca, host)
    apply(kubectl, namespace, renewed)
    wait_for(
        "the renewal reconciled", lambda: reconciles(operator, "Agent") > before and queue_drained(operator), timeout=60
    )
    after = get(kubectl, "agent", "secure", namespace)
    assert after is not None and after["status"]["revision"]["stable"] == revision
    assert get(kubectl, "deployment", "secure", namespace)["metadata"]["generation"] == generation  # type: ignore[index]
    assert [w for w in operator.writes_in(namespace) if "/deployments/" in w or "/configmaps/" in w] == writes


def test_a_model_ca_bundle_is_part_of_the_revision(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    ca = TestCA()
    model = {
        "provider": "openai-compatible",
        "name": "m",
        "endpoint": "https://llm.example.internal/v1",
        "caBundleSecretRef": {"name": "corp-ca"},
    }
    apply(kubectl, namespace, rules_agent("bot", model=model))
    missing = wait_for("SecretNotFound", lambda: _not_ready(kubectl, "bot", namespace, "SecretNotFound"))
    assert "Secret corp-ca (model CA bundle) not found" in missing["message"]
    apply(kubectl, namespace, secret("corp-ca", **{"ca.crt": ca.cert_pem.decode()}))
    agent = wait_for("Ready", lambda: ready(kubectl, "bot", namespace), timeout=120)
    revision = agent["status"]["revision"]["stable"]
    config_map = get(kubectl, "configmap", f"bot-config-{revision}", namespace)
    assert json.loads(config_map["data"]["config.json"])["model"]["caFile"] == f"{SECRETS}/corp-ca/ca.crt"  # type: ignore[index]

    apply(kubectl, namespace, secret("corp-ca", **{"ca.crt": TestCA().cert_pem.decode()}))
    wait_for(
        "a new revision for the new CA",
        lambda: (a := ready(kubectl, "bot", namespace)) and a["status"]["revision"]["stable"] != revision,
        timeout=120,
    )


def test_a_connector_waits_for_its_ca_bundle(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    crm = {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "crm"},
        "spec": {
            "type": "http",
            "endpoint": "https://crm.example.internal/api",
            "tools": [{"name": "lookup", "path": "/customers"}],
            "caBundleSecretRef": {"name": "crm-ca", "key": "root.pem"},
        },
    }
    apply(kubectl, namespace, crm)

    def connector_ready(status: str) -> dict[str, Any] | None:
        cond = condition(get(kubectl, "connector", "crm", namespace), "Ready")
        return cond if cond.get("status") == status else None

    waiting = wait_for("the Connector's SecretNotFound", lambda: connector_ready("False"))
    assert waiting["reason"] == "SecretNotFound" and "Secret crm-ca (CA bundle) not found" in waiting["message"]
    apply(kubectl, namespace, secret("crm-ca", **{"root.pem": TestCA().cert_pem.decode()}))
    wait_for("the Connector Ready", lambda: connector_ready("True"))
