"""What a new user trying the operator found wrong (issue 12), each checked on the real local cluster:
prompt ConfigMaps that other tools label, the replicas hand-off to and from an HPA, intents given
more than once, the labels children carry, reachability of an external Redis, and the status columns."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.operator_harness import OperatorProcess, free_port
from tests.integration.test_operator import apply, condition, get, ready, rules_agent, secret, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def config_map(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}, "data": data}


def system_prompt(kubectl: Kubectl, agent: dict[str, Any], namespace: str) -> str:
    name, revision = agent["metadata"]["name"], agent["status"]["revision"]["stable"]
    cm = get(kubectl, "configmap", f"{name}-config-{revision}", namespace)
    return json.loads(cm["data"]["config.json"])["systemPrompt"]


# 1. A prompt ConfigMap is the user's whatever tool labelled it ---------------------------------------------
def test_prompt_config_maps_labelled_by_other_tools_are_read_and_followed(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    # Helm sets managed-by on everything it installs; a user may even copy our own value by hand.
    # Neither makes the ConfigMap ours: only our owner reference does.
    labelled = {"helm": "Helm", "copied": "agentfleet"}
    for agent, value in labelled.items():
        apply(
            kubectl,
            namespace,
            config_map(f"prompts-{agent}", {"app.kubernetes.io/managed-by": value}, support=f"You help ({agent})."),
            rules_agent(agent, prompt={"configMapRef": {"name": f"prompts-{agent}", "key": "support"}}),
        )
    for agent in labelled:
        found = wait_for(f"{agent} Ready", lambda agent=agent: ready(kubectl, agent, namespace), timeout=60)
        assert system_prompt(kubectl, found, namespace) == f"You help ({agent})."
    # An edit of such a ConfigMap is a new revision, like any prompt change.
    for agent, value in labelled.items():
        apply(
            kubectl,
            namespace,
            config_map(
                f"prompts-{agent}", {"app.kubernetes.io/managed-by": value}, support=f"You help ({agent}), politely."
            ),
        )
    for agent in labelled:
        edited = wait_for(
            f"{agent} new prompt",
            lambda agent=agent: (
                (a := ready(kubectl, agent, namespace))
                and system_prompt(kubectl, a, namespace).endswith("politely.")
                and a
            ),
        )
        assert edited["status"]["phase"] == "Ready"


# 2. spec.replicas changes hands with an HPA without a dip -----------------------------------------------------
class ReplicaWatch:
    """Every spec.replicas the API server stores for one Deployment, from a real watch, so a dip that
    lasts only until the HPA's next sync is seen however short it is."""

    def __init__(self, kubeconfig: str, namespace: str, name: str) -> None:
        self.process = subprocess.Popen(
            [
                "kubectl",
                f"--kubeconfig={kubeconfig}",
                "get",
                "deployment",
                name,
                "-n",
                namespace,
                "--watch",
                "-o",
                'jsonpath={.metadata.resourceVersion} {.spec.replicas}{"\\n"}',
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.first = self.process.stdout.readline()  # the watch is established once the current state arrived
        assert self.first.strip(), "kubectl watch printed nothing"

    def stop(self) -> list[int]:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=10)
        return [int(line.split()[1]) for line in [self.first, *out.splitlines()] if len(line.split()) == 2]


def managers_of_replicas(kubectl: Kubectl, name: str, namespace: str) -> set[str]:
    dep = json.loads(
        kubectl("get", "deployment", name, "-n", namespace, "-o", "json", "--show-managed-fields", check=True).stdout
    )
    return {
        m["manager"]
        for m in dep["metadata"]["managedFields"]
        if "f:replicas" in (m.get("fieldsV1") or {}).get("f:spec", {})
    }


def test_fixed_to_autoscaled_keeps_the_pods_through_the_next_revision(
    operator: OperatorProcess, kubectl: Kubectl, kubeconfig: str, namespace: str
) -> None:
    apply(kubectl, namespace, rules_agent("bot"))
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    kubectl("scale", "agt/bot", "-n", namespace, "--replicas=3", check=True)
    wait_for("3/3", lambda: (a := ready(kubectl, "bot", namespace)) and a["status"]["ready"] == "3/3")
    watch = ReplicaWatch(kubeconfig, namespace, "bot")
    try:
        apply(kubectl, namespace, rules_agent("bot", autoscaling={"minReplicas": 2, "maxReplicas": 5}))
        wait_for("HPA", lambda: get(kubectl, "hpa", "bot", namespace))
        first = wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
        # The next revision is where the operator's apply, without replicas, used to reset the count to 1.
        apply(
            kubectl,
            namespace,
            rules_agent(
                "bot", autoscaling={"minReplicas": 2, "maxReplicas": 5}, prompt={"system": "You greet, briefly."}
            ),
        )
        wait_for(
            "next revision",
            lambda: (
                (a := ready(kubectl, "bot", namespace))
                and a["status"]["revision"]["stable"] != first["status"]["revision"]["stable"]
            ),
        )
    finally:
        seen = watch.stop()
    assert seen and min(seen) == 3, f"spec.replicas went through {seen}"
    assert get(kubectl, "deployment", "bot", namespace)["spec"]["replicas"] == 3
    assert "agentfleet" not in managers_of_replicas(kubectl, "bot", namespace)
    agent = get(kubectl, "agent", "bot", namespace)
    assert agent["status"]["scaling"]["owner"] == "HorizontalPodAutoscaler" and agent["status"]["ready"] == "3/3"


def test_new_autoscaled_deployment_starts_at_min_replicas(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, rules_agent("bot", autoscaling={"minReplicas": 3, "maxReplicas": 5}))
    agent = wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    dep = get(kubectl, "deployment", "bot", namespace)
    # Generation 1: created with 3 replicas, not created with 1 and scaled up by the HPA afterwards.
    assert dep["spec"]["replicas"] == 3 and dep["metadata"]["generation"] == 1
    assert agent["status"]["ready"] == "3/3"
    assert managers_of_replicas(kubectl, "bot", namespace) == {"agentfleet-replicas-handover"}
    # Re-created (deleted by hand) under the existing HPA: again at the minimum, not at 1.
    uid = dep["metadata"]["uid"]
    kubectl("delete", "deployment", "bot", "-n", namespace, check=True)
    again = wait_for(
        "re-created", lambda: (d := get(kubectl, "deployment", "bot", namespace)) and d["metadata"]["uid"] != uid and d
    )
    assert again["spec"]["replicas"] == 3 and again["metadata"]["generation"] == 1


def test_autoscaled_to_fixed_keeps_the_count_until_a_new_explicit_value(
    operator: OperatorProcess, kubectl: Kubectl, kubeconfig: str, namespace: str
) -> None:
    apply(kubectl, namespace, rules_agent("bot", autoscaling={"minReplicas": 2, "maxReplicas": 5}))
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    kubectl("scale", "deployment/bot", "-n", namespace, "--replicas=4", check=True)  # as the HPA would
    wait_for("4 pods", lambda: (a := ready(kubectl, "bot", namespace)) and a["status"]["ready"] == "4/4")
    watch = ReplicaWatch(kubeconfig, namespace, "bot")
    try:
        # Autoscaling removed; spec.replicas is still the default 1 it was all along.
        apply(kubectl, namespace, rules_agent("bot"))
        wait_for("HPA pruned", lambda: get(kubectl, "hpa", "bot", namespace) is None)
        held = wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
        assert held["spec"]["replicas"] == 1
        # A new revision applies the Deployment again: the count stays.
        apply(kubectl, namespace, rules_agent("bot", prompt={"system": "You greet, briefly."}))
        wait_for(
            "next revision",
            lambda: (
                (a := ready(kubectl, "bot", namespace))
                and a["status"]["revision"]["stable"] != held["status"]["revision"]["stable"]
            ),
        )
    finally:
        seen = watch.stop()
    assert seen and min(seen) == 4, f"spec.replicas went through {seen}"
    agent = get(kubectl, "agent", "bot", namespace)
    assert agent["status"]["scaling"] == {"owner": "Deployment", "specReplicas": 1}
    assert agent["status"]["ready"] == "4/4"
    assert get(kubectl, "pdb", "bot", namespace) is not None  # 4 pods run: spec.replicas 1 is not the count
    # A new explicit value is the Agent's again.
    kubectl("scale", "agt/bot", "-n", namespace, "--replicas=2", check=True)
    agent = wait_for("2 pods", lambda: (a := ready(kubectl, "bot", namespace)) and a["status"]["ready"] == "2/2" and a)
    assert agent["status"]["scaling"] == {"owner": "Agent", "specReplicas": 2}
    assert get(kubectl, "deployment", "bot", namespace)["spec"]["replicas"] == 2


# 4. promote=full works on every canary, and an intent that is not acted on says so ---------------------------
PROMOTE = "agentfleet.dev/promote"
PAUSED_CANARY = {"strategy": "Canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}


def paused_canary(kubectl: Kubectl, namespace: str, prompt: str) -> dict[str, Any]:
    apply(kubectl, namespace, rules_agent("bot", rollout=PAUSED_CANARY, prompt={"system": prompt}))
    return wait_for(
        f"canary of {prompt!r} paused",
        lambda: (
            (a := get(kubectl, "agent", "bot", namespace))
            and a["status"]["rollout"]["phase"] == "Paused"
            and a["status"]["revision"]["canary"]
            and a
        ),
    )


def promoted(kubectl: Kubectl, namespace: str, canary: str) -> dict[str, Any]:
    return wait_for(
        f"{canary} promoted",
        lambda: (
            (a := ready(kubectl, "bot", namespace))
            and a["status"]["revision"] == {"stable": canary, "canary": ""}
            and a
        ),
    )


def events_of(kubectl: Kubectl, namespace: str, reason: str) -> list[str]:
    listing = kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name=bot,reason={reason}",
        "-o",
        "json",
        check=True,
    )
    return [e["message"] for e in json.loads(listing.stdout)["items"]]


def test_promote_full_works_on_every_canary(operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, rules_agent("bot", rollout=PAUSED_CANARY))
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    first = paused_canary(kubectl, namespace, "You greet, take 1.")["status"]["revision"]["canary"]
    kubectl("annotate", "agt/bot", "-n", namespace, f"{PROMOTE}=full", "--overwrite", check=True)
    promoted(kubectl, namespace, first)

    # The next canary: the annotation still says full, which was acted on; an unchanged annotation is
    # no event at all, so the operator says what to write instead, on the Agent and in an Event.
    paused = paused_canary(kubectl, namespace, "You greet, take 2.")
    second = paused["status"]["revision"]["canary"]
    message = paused["status"]["rollout"]["message"]
    assert f"{PROMOTE}=full:{second}" in message, message
    notes = wait_for(
        "IntentIgnored event", lambda: [m for m in events_of(kubectl, namespace, "IntentIgnored") if second in m]
    )
    assert f"{PROMOTE}=full was acted on before" in notes[0] and f"{PROMOTE}=full:{second}" in notes[0]
    kubectl("annotate", "agt/bot", "-n", namespace, f"{PROMOTE}=full:{second}", "--overwrite", check=True)
    promoted(kubectl, namespace, second)

    # Removing the annotation and writing full again is a change a person made: acted on.
    third = paused_canary(kubectl, namespace, "You greet, take 3.")["status"]["revision"]["canary"]
    kubectl("annotate", "agt/bot", "-n", namespace, f"{PROMOTE}-", check=True)
    wait_for(
        "record forgotten",
        lambda: "promote" not in get(kubectl, "agent", "bot", namespace)["status"]["rollout"].get("handledIntents", {}),
    )
    kubectl("annotate", "agt/bot", "-n", namespace, f"{PROMOTE}=full", check=True)
    promoted(kubectl, namespace, third)


# 5. Children carry no label an Argo CD Application could track them by -------------------------------------
CHILD_KINDS = "deploy,svc,sa,cm,secret,networkpolicy,hpa,pdb,statefulset"


def test_children_cannot_be_claimed_by_an_application_of_the_same_name(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    # Argo CD's default tracking label is app.kubernetes.io/instance=<Application>: an Agent named like
    # an Application ("shop") must not have its children listed (and pruned) as that Application's.
    policy = {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "StatePolicy",
        "metadata": {"name": "shop"},
        "spec": {"store": {"type": "redis", "redis": {"provision": True}}},
    }
    apply(
        kubectl,
        namespace,
        policy,
        rules_agent(
            "shop", replicas=2, statePolicyRef={"name": "shop"}, autoscaling={"minReplicas": 2, "maxReplicas": 3}
        ),
    )
    wait_for(
        "children",
        lambda: (
            get(kubectl, "hpa", "shop", namespace)
            and get(kubectl, "pdb", "shop", namespace)
            and get(kubectl, "statefulset", "shop-redis", namespace)
        ),
    )
    owned = kubectl(
        "get", CHILD_KINDS, "-n", namespace, "-l", "app.kubernetes.io/managed-by=agentfleet", "-o", "json", check=True
    )
    items = json.loads(owned.stdout)["items"]
    assert {i["kind"] for i in items} >= {
        "Deployment",
        "Service",
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "StatefulSet",
    }
    tracked = [
        f"{i['kind']}/{i['metadata']['name']}"
        for i in items
        if "app.kubernetes.io/instance" in (i["metadata"].get("labels") or {})
    ]
    assert tracked == []
    pods = json.loads(kubectl("get", "deploy", "shop", "-n", namespace, "-o", "json", check=True).stdout)
    assert "app.kubernetes.io/instance" not in pods["spec"]["template"]["metadata"]["labels"]
    # What still says whose they are:
    assert all(
        i["metadata"]["labels"].get("agentfleet.dev/agent") == "shop"
        or i["metadata"]["labels"].get("agentfleet.dev/statepolicy") == "shop"
        for i in items
    )


# 3. An external Redis is checked: connect, AUTH, PING ----------------------------------------------------------
class Redis:
    """A real redis-server with a password, on a port of its own, that a test can stop."""

    def __init__(self, directory: Path, password: str) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for("redis-server listening", self._listening, timeout=20, interval=0.05)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path, "s3cret")
    yield server
    server.stop()


def store_policy(name: str, url: str, secret: str | None = None) -> dict[str, Any]:
    redis: dict[str, Any] = {"url": url}
    if secret:
        redis["passwordSecretRef"] = {"name": secret, "key": "password"}
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "StatePolicy",
        "metadata": {"name": name},
        "spec": {"store": {"type": "redis", "redis": redis}},
    }


def reachable(kubectl: Kubectl, name: str, namespace: str) -> dict[str, Any]:
    return condition(get(kubectl, "statepolicy", name, namespace), "StoreReachable")


def test_external_redis_reachability_is_checked_and_reaches_the_agents(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, redis_with_password: Redis
) -> None:
    url = f"redis://127.0.0.1:{redis_with_password.port}/0"
    apply(
        kubectl,
        namespace,
        secret("redis-auth", password="s3cret"),
        store_policy("sessions", url, "redis-auth"),
        rules_agent("bot", statePolicyRef={"name": "sessions"}),
    )
    ok = wait_for("Reachable", lambda: (c := reachable(kubectl, "sessions", namespace)).get("status") == "True" and c)
    assert ok["reason"] == "Reachable"
    agent = wait_for("Agent Ready", lambda: ready(kubectl, "bot", namespace))
    assert condition(agent, "StateReady")["status"] == "True"

    # On Secret change: a wrong password is AuthFailed, on the policy and on the Agent.
    apply(kubectl, namespace, secret("redis-auth", password="wrong"))
    failed = wait_for(
        "AuthFailed", lambda: (c := reachable(kubectl, "sessions", namespace)).get("reason") == "AuthFailed" and c
    )
    assert failed["status"] == "False" and "s3cret" not in failed["message"] and "wrong" not in failed["message"]
    policy = get(kubectl, "statepolicy", "sessions", namespace)
    assert condition(policy, "Ready")["status"] == "False"
    agent = wait_for(
        "Agent StateReady=False",
        lambda: (
            (a := get(kubectl, "agent", "bot", namespace)) and condition(a, "StateReady").get("status") == "False" and a
        ),
    )
    state = condition(agent, "StateReady")
    assert state["reason"] == "StateStoreNotReady" and "refused AUTH" in state["message"], state
    apply(kubectl, namespace, secret("redis-auth", password="s3cret"))
    wait_for("Reachable again", lambda: reachable(kubectl, "sessions", namespace).get("status") == "True")
    wait_for("Agent Ready again", lambda: ready(kubectl, "bot", namespace))

    # On the interval: the server going away changes no object, and is still noticed.
    redis_with_password.stop()
    refused = wait_for(
        "ConnectionRefused",
        lambda: (c := reachable(kubectl, "sessions", namespace)).get("reason") == "ConnectionRefused" and c,
        timeout=60,
    )
    assert refused["status"] == "False"
    wait_for(
        "Agent StateReady=False",
        lambda: condition(get(kubectl, "agent", "bot", namespace), "StateReady").get("status") == "False",
    )


def test_unreachable_external_redis_reasons(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, redis_with_password: Redis
) -> None:
    # Accepts connections (the kernel's backlog) and never answers: a firewall dropping replies, a hung host.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        apply(
            kubectl,
            namespace,
            store_policy("nothing", f"redis://127.0.0.1:{free_port()}/0"),
            store_policy("silent", f"redis://127.0.0.1:{silent.getsockname()[1]}/0"),
            store_policy("no-password", f"redis://127.0.0.1:{redis_with_password.port}/0"),
        )
        expected = {"nothing": "ConnectionRefused", "silent": "Timeout", "no-password": "AuthFailed"}
        for name, reason in expected.items():
            cond = wait_for(
                f"{name} {reason}",
                lambda name=name: (c := reachable(kubectl, name, namespace)).get("status") == "False" and c,
            )
            assert cond["reason"] == reason, cond
            assert condition(get(kubectl, "statepolicy", name, namespace), "Ready")["reason"] == reason
    finally:
        silent.close()


# 6. Small things a user sees ---------------------------------------------------------------------------------
def test_pending_agent_fills_the_ready_and_endpoint_columns(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, rules_agent("bot", replicas=2, connectors=[{"name": "missing"}]))
    agent = wait_for(
        "Pending",
        lambda: (
            (a := get(kubectl, "agent", "bot", namespace)) and (a.get("status") or {}).get("phase") == "Pending" and a
        ),
    )
    assert agent["status"]["ready"] == "0/2"
    assert agent["status"]["endpoint"] == f"http://bot.{namespace}.svc:8080"
    wide = kubectl("get", "agt", "bot", "-n", namespace, "-o", "wide", "--no-headers", check=True).stdout.split()
    assert "0/2" in wide and f"http://bot.{namespace}.svc:8080" in wide and "ConnectorNotFound" in wide


def test_too_long_agent_name_is_refused_naming_metadata_name(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    refused = kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(rules_agent("a" * 48)))
    assert refused.returncode != 0
    assert "metadata.name: Invalid value" in refused.stderr and "<nil>" not in refused.stderr, refused.stderr
    assert "at most 47 characters" in refused.stderr


def test_deleting_a_namespace_logs_no_event_warnings(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    # A Connector held by someone else's finalizer outlives its Secret while the namespace goes: its
    # reconcile reports SecretNotFound, and the Event for it is refused (the namespace is terminating).
    conn = {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "crm", "finalizers": ["example.com/hold"]},
        "spec": {
            "type": "http",
            "endpoint": "https://crm.example.com/api",
            "auth": {"type": "bearer", "secretRef": {"name": "crm-token"}},
            "tools": [{"name": "lookup", "method": "GET", "path": "/c"}],
        },
    }
    apply(kubectl, namespace, secret("crm-token", token="t"), conn)
    wait_for(
        "Connector Ready",
        lambda: condition(get(kubectl, "connector", "crm", namespace), "Ready").get("status") == "True",
    )

    def event_posts() -> int:
        return sum(1 for line in operator.writes_in(namespace) if f"/namespaces/{namespace}/events" in line)

    before = event_posts()
    kubectl("delete", "namespace", namespace, "--wait=false", check=True)
    try:
        wait_for(
            "SecretNotFound while terminating",
            lambda: (
                condition(get(kubectl, "connector", "crm", namespace), "SecretResolved").get("reason")
                == "SecretNotFound"
            ),
        )
        wait_for("the Event posted (and refused)", lambda: event_posts() > before)
        time.sleep(1)  # the refusal is logged when the response arrives, right after the request line
    finally:
        kubectl("patch", "connector", "crm", "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    warnings = [
        r["msg"]
        for r in _log_records(operator)
        if r.get("level") in ("warning", "error") and f"{namespace}/" in str(r.get("message"))
    ]
    assert warnings == [], "\n".join(warnings)


def _log_records(operator: OperatorProcess) -> list[dict[str, Any]]:
    records = []
    for line in operator.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # kopf's own lines before logging is configured
        if isinstance(record, dict):
            records.append(record)
    return records
