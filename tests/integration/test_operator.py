"""The operator on the real local cluster, running under the RBAC it ships."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.integration.operator_harness import OperatorProcess

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 120, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(result.stdout) if result.stdout.strip() else None


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in (obj or {}).get("status", {}).get("conditions", []):
        if cond["type"] == type_:
            return cond
    return {}


def apply(kubectl: Kubectl, namespace: str, *docs: dict[str, Any]) -> None:
    for doc in docs:
        doc.setdefault("metadata", {})["namespace"] = namespace
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs), check=True)


def rules_agent(name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "model": {"provider": "rules", "name": "greeter", "rules": [{"pattern": "hi", "reply": "hello"}]},
        "prompt": {"system": "You greet."},
    }
    body.update(spec)
    return {"apiVersion": "agentfleet.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name}, "spec": body}


def connector(name: str, secret: str | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"type": "bearer", "secretRef": {"name": secret}} if secret else {"type": "none"}
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": name},
        "spec": {
            "type": "http",
            "endpoint": "https://crm.example.com/api",
            "auth": auth,
            "tools": [{"name": "lookup_customer", "method": "GET", "path": "/customers"}],
        },
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def provisioned_policy(name: str) -> dict[str, Any]:
    """A StatePolicy whose Redis the operator runs."""
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "StatePolicy",
        "metadata": {"name": name},
        "spec": {"store": {"type": "redis", "redis": {"provision": True}}},
    }


def ready(kubectl: Kubectl, name: str, namespace: str) -> dict[str, Any] | None:
    agent = get(kubectl, "agent", name, namespace)
    if (
        agent
        and condition(agent, "Ready").get("status") == "True"
        and agent["status"].get("observedGeneration") == agent["metadata"]["generation"]
    ):
        return agent
    return None


def queue_drained(process: OperatorProcess) -> bool:
    """Nothing queued or being reconciled (the operator's /readyz counts the keys it holds)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{process.health_port}/readyz", timeout=2) as response:
            return json.load(response).get("queued") == 0
    except OSError:
        return False


def reconciles(process: OperatorProcess, kind: str) -> float:
    """Reconciles of one kind this operator process has finished, whatever their result."""
    pattern = rf'^agentfleet_reconcile_total\{{kind="{kind}",result="[a-z]+"\}} ([0-9.e+]+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, process.metrics(), re.M))


def test_agent_becomes_ready_with_its_children(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, rules_agent("greeter"))
    waited = kubectl("wait", "--for=condition=Ready", "--timeout=90s", "agt/greeter", "-n", namespace)
    assert waited.returncode == 0, waited.stderr + operator.log_tail()
    agent = get(kubectl, "agent", "greeter", namespace)
    status = agent["status"]
    assert status["phase"] == "Ready" and status["ready"] == "1/1" and status["readyReplicas"] == 1
    assert status["selector"] == "agentfleet.dev/agent=greeter"
    assert status["endpoint"] == f"http://greeter.{namespace}.svc:8080"
    revision = status["revision"]["stable"]
    assert revision and status["observedGeneration"] == agent["metadata"]["generation"]
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "Reconciling",
        "Stalled",
        "ConnectorsReady",
        "StateReady",
        "RolloutHealthy",
        "EgressReady",
    }
    assert condition(agent, "Stalled")["status"] == "False"
    for kind, name in [
        ("serviceaccount", "greeter"),
        ("configmap", f"greeter-config-{revision}"),
        ("secret", "greeter-access"),
        ("deployment", "greeter"),
        ("service", "greeter"),
        ("networkpolicy", "greeter"),
    ]:
        child = get(kubectl, kind, name, namespace)
        assert child is not None, f"{kind}/{name} missing"
        owner = child["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "Agent" and owner["uid"] == agent["metadata"]["uid"] and owner["controller"]
    assert get(kubectl, "hpa", "greeter", namespace) is None
    assert get(kubectl, "pdb", "greeter", namespace) is None  # one replica: no PDB
    cm = get(kubectl, "configmap", f"greeter-config-{revision}", namespace)
    assert cm["immutable"] is True and json.loads(cm["data"]["config.json"])["agent"]["revision"] == revision
    listing = kubectl("get", "agt", "-n", namespace, check=True).stdout
    assert "1/1" in listing and "Ready" in listing


def test_missing_connector_recovers_without_touching_the_agent(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, rules_agent("bot", connectors=[{"name": "crm"}]))
    agent = wait_for(
        "ConnectorNotFound",
        lambda: (
            (a := get(kubectl, "agent", "bot", namespace))
            and condition(a, "ConnectorsReady").get("reason") == "ConnectorNotFound"
            and a
        ),
    )
    assert condition(agent, "Ready")["status"] == "False" and condition(agent, "Ready")["reason"] == "ConnectorNotFound"
    assert condition(agent, "Stalled")["status"] == "True"
    assert agent["status"]["phase"] == "Pending"
    generation = agent["metadata"]["generation"]
    events = kubectl(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=bot", "-o", "json", check=True
    )
    assert any(
        e["reason"] == "ConnectorNotFound" and e["type"] == "Warning" for e in json.loads(events.stdout)["items"]
    )

    apply(kubectl, namespace, connector("crm", secret="crm-token"))
    # The Connector reports its own missing Secret, and the Agent says why it waits.
    wait_for(
        "SecretNotFound",
        lambda: (
            condition(get(kubectl, "connector", "crm", namespace), "SecretResolved").get("reason") == "SecretNotFound"
        ),
    )
    apply(kubectl, namespace, secret("crm-token", wrong="x"))
    wait_for(
        "SecretKeyMissing",
        lambda: (
            condition(get(kubectl, "connector", "crm", namespace), "SecretResolved").get("reason") == "SecretKeyMissing"
        ),
    )
    apply(kubectl, namespace, secret("crm-token", token="t0ken"))
    agent = wait_for("Agent Ready", lambda: ready(kubectl, "bot", namespace))
    assert agent["metadata"]["generation"] == generation  # nobody edited the Agent
    assert condition(agent, "ConnectorsReady")["status"] == "True"
    conn = wait_for(
        "usedBy", lambda: (c := get(kubectl, "connector", "crm", namespace)) and c["status"].get("usedBy") == 1 and c
    )
    assert condition(conn, "Ready")["status"] == "True" and conn["status"]["secretHash"]
    assert "t0ken" not in json.dumps(conn) and "dDBrZW4" not in json.dumps(conn["status"])


def test_secret_rotation_and_prompt_edit_make_new_revisions(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    prompt = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "prompts"},
        "data": {"support": "You help."},
    }
    apply(
        kubectl,
        namespace,
        prompt,
        connector("crm", secret="crm-token"),
        secret("crm-token", token="one"),
        rules_agent(
            "bot", prompt={"configMapRef": {"name": "prompts", "key": "support"}}, connectors=[{"name": "crm"}]
        ),
    )
    first = wait_for("Ready", lambda: ready(kubectl, "bot", namespace))["status"]["revision"]["stable"]

    def template_revision() -> str:
        dep = get(kubectl, "deployment", "bot", namespace)
        return dep["spec"]["template"]["metadata"]["labels"]["agentfleet.dev/revision"]

    assert template_revision() == first
    apply(kubectl, namespace, secret("crm-token", token="two"))  # rotation
    second = wait_for(
        "rotation revision",
        lambda: (
            (a := ready(kubectl, "bot", namespace))
            and a["status"]["revision"]["stable"] != first
            and a["status"]["revision"]["stable"]
        ),
    )
    assert template_revision() == second
    prompt["data"]["support"] = "You help, politely."
    apply(kubectl, namespace, prompt)
    third = wait_for(
        "prompt revision",
        lambda: (
            (a := ready(kubectl, "bot", namespace))
            and a["status"]["revision"]["stable"] not in (first, second)
            and a["status"]["revision"]["stable"]
        ),
    )
    assert template_revision() == third
    config = json.loads(get(kubectl, "configmap", f"bot-config-{third}", namespace)["data"]["config.json"])
    assert config["systemPrompt"] == "You help, politely."
    assert "two" not in json.dumps(config) and config["connectors"][0]["auth"]["secretDir"].endswith("crm-token")


def test_scale_subresource_and_pdb(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, rules_agent("bot"))
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    kubectl("scale", "agt/bot", "-n", namespace, "--replicas=3", check=True)
    agent = wait_for(
        "3 replicas", lambda: (a := ready(kubectl, "bot", namespace)) and a["status"]["replicas"] == 3 and a
    )
    assert agent["status"]["ready"] == "3/3"
    assert get(kubectl, "deployment", "bot", namespace)["spec"]["replicas"] == 3
    assert get(kubectl, "pdb", "bot", namespace)["spec"]["maxUnavailable"] == 1
    scale = json.loads(
        kubectl(
            "get", "--raw", f"/apis/agentfleet.dev/v1alpha1/namespaces/{namespace}/agents/bot/scale", check=True
        ).stdout
    )
    assert scale["spec"]["replicas"] == 3 and scale["status"]["selector"] == "agentfleet.dev/agent=bot"


def test_autoscaled_agent_leaves_replicas_to_the_hpa(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        rules_agent("bot", autoscaling={"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilization": 60}),
    )
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    hpa = get(kubectl, "hpa", "bot", namespace)
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["scaleTargetRef"]["name"] == "bot"
    managers = json.loads(
        kubectl("get", "deployment", "bot", "-n", namespace, "-o", "json", "--show-managed-fields", check=True).stdout
    )["metadata"]["managedFields"]
    ours = [m for m in managers if m["manager"] == "agentfleet"]
    assert ours and all("f:replicas" not in json.dumps(m.get("fieldsV1", {}).get("f:spec", {})) for m in ours)
    # What the HPA does (a scale of the Deployment) is not undone by the operator.
    deployment_writes = [w for w in operator.writes_in(namespace) if "/deployments/bot" in w]
    kubectl("scale", "deployment/bot", "-n", namespace, "--replicas=4", check=True)
    # Status saying 4 is the operator's own write from the scaled Deployment it observed; once its queue
    # is empty that reconcile is over, so whatever it was going to do to the Deployment is done.
    wait_for("4 pods", lambda: (ready(kubectl, "bot", namespace) or {}).get("status", {}).get("replicas") == 4)
    wait_for("operator idle", lambda: queue_drained(operator))
    assert get(kubectl, "deployment", "bot", namespace)["spec"]["replicas"] == 4
    assert [w for w in operator.writes_in(namespace) if "/deployments/bot" in w] == deployment_writes


def test_drift_is_restored_and_foreign_fields_kept(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, rules_agent("bot"))
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    original = get(kubectl, "service", "bot", namespace)["metadata"]["uid"]
    kubectl("delete", "service", "bot", "-n", namespace, check=True)
    wait_for(
        "service restored",
        lambda: (s := get(kubectl, "service", "bot", namespace)) and s["metadata"]["uid"] != original,
    )
    kubectl(
        "patch",
        "networkpolicy",
        "bot",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"podSelector":{"matchLabels":{"agentfleet.dev/agent":"other"}}}}',
        check=True,
    )
    wait_for(
        "selector restored",
        lambda: (
            get(kubectl, "networkpolicy", "bot", namespace)["spec"]["podSelector"]["matchLabels"][
                "agentfleet.dev/agent"
            ]
            == "bot"
        ),
    )
    # A foreign annotation and drift of an operator-owned field in one write: the drift being undone shows
    # the operator applied over the very object that carries the annotation.
    kubectl(
        "patch",
        "service",
        "bot",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"annotations":{"example.com/owner":"team-a"}},'
        '"spec":{"selector":{"agentfleet.dev/agent":"other"}}}',
        check=True,
    )
    service = wait_for(
        "service selector restored",
        lambda: (
            (s := get(kubectl, "service", "bot", namespace))
            and s["spec"]["selector"].get("agentfleet.dev/agent") == "bot"
            and s
        ),
    )
    assert service["metadata"]["annotations"]["example.com/owner"] == "team-a"


def test_deleting_the_agent_removes_every_child(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, rules_agent("bot", replicas=2))
    agent = wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    kinds = "deploy,svc,sa,cm,secret,pdb,networkpolicy,hpa"

    def owned() -> set[str]:
        # By ownerReference, not by our label: a child that lost its label must be collected all the same.
        items = json.loads(kubectl("get", kinds, "-n", namespace, "-o", "json", check=True).stdout)["items"]
        return {
            f"{i['kind']}/{i['metadata']['name']}"
            for i in items
            if any(r["uid"] == agent["metadata"]["uid"] for r in i["metadata"].get("ownerReferences", []))
        }

    # The children shared/API.md names, by name: one that lost both label and owner would escape any search.
    named = {
        "Deployment/bot",
        "Service/bot",
        "ServiceAccount/bot",
        "Secret/bot-access",
        "PodDisruptionBudget/bot",
        "NetworkPolicy/bot",
        f"ConfigMap/bot-config-{agent['status']['revision']['stable']}",
    }
    children = owned() | named
    kubectl("delete", "agt", "bot", "-n", namespace, "--timeout=30s", check=True)  # no finalizer keeps it

    def leftovers() -> list[str]:
        # Each child by kind and name (kubectl takes deployment/bot; names are lower case already).
        found = kubectl(
            "get", *[child.lower() for child in sorted(children)], "-n", namespace, "-o", "name", "--ignore-not-found"
        )
        return found.stdout.split()

    wait_for("garbage collection", lambda: leftovers() == [] and owned() == set(), timeout=60)


def test_no_op_resync_writes_nothing_and_restart_converges(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    apply(
        kubectl,
        namespace,
        connector("crm", secret="crm-token"),
        secret("crm-token", token="x"),
        rules_agent("bot", connectors=[{"name": "crm"}], replicas=2),
    )
    agent = wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    children_before = kubectl(
        "get", "deploy,svc,sa,cm,secret,pdb,networkpolicy", "-n", namespace, "-o", "name", check=True
    ).stdout.split()
    operator.stop()
    # Watching this namespace only, so its reconcile counters are about this Agent and Connector alone.
    restarted = OperatorProcess(
        operator.kubeconfig, tmp_path / "restarted.log", scope=("--namespace", namespace)
    ).start()
    try:
        # The restarted operator lists everything and reconciles every object once; once both were
        # reconciled and its queue is empty, whatever the restart was going to write has been written.
        wait_for(
            "bot and crm reconciled after the restart",
            lambda: (
                queue_drained(restarted)
                and reconciles(restarted, "Agent") >= 1
                and reconciles(restarted, "Connector") >= 1
            ),
            timeout=60,
        )
        assert restarted.writes_in(namespace) == []
        assert restarted.api_requests().get("list", 0) == 0  # watches and indexes, not polling
        after = get(kubectl, "agent", "bot", namespace)
        assert after["metadata"]["resourceVersion"] == agent["metadata"]["resourceVersion"]
        children_after = kubectl(
            "get", "deploy,svc,sa,cm,secret,pdb,networkpolicy", "-n", namespace, "-o", "name", check=True
        ).stdout.split()
        assert children_after == children_before
    finally:
        restarted.stop()
        operator.start()


def test_agent_pods_pass_restricted_pod_security(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    labels = get(kubectl, "namespace", namespace, namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # A pod that breaks the standard is refused here: the check is real.
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]},
    }
    refused = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(bad))
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr
    apply(kubectl, namespace, rules_agent("bot", replicas=2))
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    pods = json.loads(
        kubectl("get", "pods", "-n", namespace, "-l", "agentfleet.dev/agent=bot", "-o", "json", check=True).stdout
    )["items"]
    assert len(pods) == 2


def test_provisioned_redis_passes_restricted_pod_security(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    policy = provisioned_policy("sessions")
    apply(kubectl, namespace, policy)
    sts = wait_for("StatefulSet", lambda: get(kubectl, "statefulset", "sessions-redis", namespace))
    # The pod stays Pending without a volume here; what matters is that admission accepted it.
    wait_for("redis pod admitted", lambda: get(kubectl, "pod", "sessions-redis-0", namespace))
    events = kubectl("get", "events", "-n", namespace, "-o", "json", check=True).stdout
    assert "violates PodSecurity" not in events
    secret_names = kubectl("get", "secrets", "-n", namespace, "-o", "name", check=True).stdout
    assert "secret/sessions-redis-auth" in secret_names
    assert "requirepass" not in json.dumps(sts)
    stp = get(kubectl, "statepolicy", "sessions", namespace)
    assert stp["status"]["storeUrl"] == f"redis://sessions-redis.{namespace}.svc:6379/0"


def test_operator_killed_mid_create_converges_without_duplicates(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    count = 15
    apply(kubectl, namespace, *[rules_agent(f"bot-{i}") for i in range(count)])
    wait_for("some work started", lambda: len(operator.writes_in(namespace)) > 3, timeout=60)
    operator.stop(signal.SIGKILL)  # mid-way: no graceful shutdown
    operator.start()
    for i in range(count):
        wait_for(f"bot-{i} Ready", lambda i=i: ready(kubectl, f"bot-{i}", namespace))

    def names(kind: str) -> list[str]:
        return kubectl("get", kind, "-n", namespace, "-o", "name", check=True).stdout.split()

    deployments = names("deployments")
    assert sorted(deployments) == sorted(f"deployment.apps/bot-{i}" for i in range(count))
    access = [s for s in names("secrets") if s.endswith("-access")]
    assert sorted(access) == sorted(f"secret/bot-{i}-access" for i in range(count))
    configs = [c for c in names("configmaps") if "-config-" in c]
    assert len(configs) == count  # one revision each: nothing rendered twice under another name


def test_a_redis_state_policy_gets_a_session_key_its_agents_mount(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    policy = provisioned_policy("sessions")
    apply(kubectl, namespace, policy, rules_agent("bot", statePolicyRef={"name": "sessions"}))
    key_secret = wait_for("session key Secret", lambda: get(kubectl, "secret", "sessions-session-key", namespace))
    owner = key_secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("StatePolicy", "sessions", True)
    key = base64.b64decode(key_secret["data"]["hmacKey"]).decode()
    assert len(key) >= 32
    agent = wait_for(
        "a revision", lambda: (a := get(kubectl, "agent", "bot", namespace)) and a["status"].get("revision") and a
    )
    revision = agent["status"]["revision"]["stable"]
    cm = wait_for("config", lambda: get(kubectl, "configmap", f"bot-config-{revision}", namespace))
    state = json.loads(cm["data"]["config.json"])["state"]
    assert state["sessionKeyFile"] == "/var/run/agentfleet/secrets/sessions-session-key/hmacKey"
    assert key not in json.dumps(cm)
    deployment = wait_for("Deployment", lambda: get(kubectl, "deployment", "bot", namespace))
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert any(v["secret"]["secretName"] == "sessions-session-key" for v in volumes.values())
    # Generated once: a later reconcile (a spec edit of the policy) keeps the key.
    kubectl(
        "patch",
        "statepolicy",
        "sessions",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"session":{"ttlSeconds":120}}}',
        check=True,
    )
    wait_for(
        "policy reconciled",
        lambda: get(kubectl, "statepolicy", "sessions", namespace)["status"].get("observedGeneration") == 2,
    )
    assert get(kubectl, "secret", "sessions-session-key", namespace)["data"]["hmacKey"] == key_secret["data"]["hmacKey"]
