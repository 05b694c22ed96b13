"""The pure builders: every field of every child comes from here, so the invariants are tested here."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from agentfleet_operator.api import AgentSpec, ConnectorSpec, StatePolicySpec
from agentfleet_operator.builders import agent_children as children
from agentfleet_operator.builders import names, state_store
from agentfleet_operator.builders.drift import contains, needs_apply
from agentfleet_operator.builders.inputs import ResolvedAgent, ResolvedConnector, ResolvedState
from agentfleet_operator.builders.revision import revision_hash, secret_hash
from agentfleet_operator.builders.runtime_config import build_runtime_config, revision_inputs, secret_mounts

from tests.unit.samples import load_sample


def _agent(**overrides: Any) -> ResolvedAgent:
    agent_doc = load_sample("support-bot-agent.yaml")
    connector = ConnectorSpec.model_validate(load_sample("crm-connector.yaml")["spec"])
    policy = StatePolicySpec.model_validate(load_sample("chat-sessions-statepolicy.yaml")["spec"])
    spec = AgentSpec.model_validate(agent_doc["spec"])
    base: dict[str, Any] = dict(
        name="support-bot", namespace="support", uid="uid-1", spec=spec, image="runtime:1",
        prompt_text=spec.prompt.system or "",
        connectors=(ResolvedConnector(ref=spec.connectors[0], spec=connector),),
        state=ResolvedState(name="chat-sessions", spec=policy,
                            redis_url=state_store.redis_url("chat-sessions", "support"),
                            password_secret=("chat-sessions-redis-auth", "password")),
        access_secret="support-bot-access",
        secret_hashes={"crm-creds": "h1", "llm-key": "h2", "state-key": "h3", "chat-sessions-redis-auth": "h4",
                       "support-bot-access": "h5"},
    )
    base.update(overrides)
    return ResolvedAgent(**base)


def _track(agent: ResolvedAgent, replicas: int | None = 2) -> children.Track:
    revision = revision_hash(agent.image, revision_inputs(agent), agent.secret_hashes)
    mounts = {k: tuple(sorted(v)) for k, v in secret_mounts(agent).items()}
    return children.Track("stable", revision, agent.image, mounts, replicas)


def test_revision_changes_with_everything_a_pod_runs() -> None:
    agent = _agent()
    base = _track(agent).revision
    assert _track(_agent()).revision == base  # deterministic
    assert _track(_agent(prompt_text="other prompt")).revision != base
    assert _track(_agent(image="runtime:2")).revision != base
    rotated = dict(agent.secret_hashes, **{"crm-creds": "rotated"})
    assert _track(_agent(secret_hashes=rotated)).revision != base
    spec = agent.spec.model_copy(update={"model": agent.spec.model.model_copy(update={"name": "gpt-4o"})})
    assert _track(_agent(spec=spec)).revision != base
    # Scaling is not part of what a pod runs.
    scaled = agent.spec.model_copy(update={"replicas": 7})
    assert _track(_agent(spec=scaled)).revision == base


def test_runtime_config_carries_paths_never_secret_values() -> None:
    agent = _agent()
    config = build_runtime_config(agent, "rev1")
    text = json.dumps(config)
    assert config["model"]["apiKeyFile"] == "/var/run/agentfleet/secrets/llm-key/apiKey"
    assert config["connectors"][0]["auth"]["secretDir"] == "/var/run/agentfleet/secrets/crm-creds"
    assert config["state"]["redisPasswordFile"].endswith("chat-sessions-redis-auth/password")
    assert config["state"]["encryptionKeyFile"].endswith("state-key/key")
    assert config["access"]["apiKeysDir"].endswith("support-bot-access")
    assert "demo-client-secret" not in text and "demo-llm-key" not in text
    # Only the tools the Agent selected reach the runtime.
    assert [t["name"] for t in config["connectors"][0]["tools"]] == ["lookup_customer", "create_ticket"]


def test_tool_filter_limits_tools() -> None:
    agent = _agent()
    ref = agent.connectors[0].ref.model_copy(update={"tools": ["lookup_customer"]})
    narrowed = _agent(connectors=(ResolvedConnector(ref=ref, spec=agent.connectors[0].spec),))
    assert [t["name"] for t in build_runtime_config(narrowed, "r")["connectors"][0]["tools"]] == ["lookup_customer"]


def test_deployment_is_restricted_and_probed() -> None:
    agent = _agent()
    deployment = children.deployment(agent, _track(agent))
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "env" not in container  # secrets only as files
    secret_volumes = {v["secret"]["secretName"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    assert secret_volumes["crm-creds"]["items"] == [{"key": "clientId", "path": "clientId"},
                                                    {"key": "clientSecret", "path": "clientSecret"}]
    assert "items" not in secret_volumes["support-bot-access"]  # every key is an accepted caller key
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels[names.LABEL_AGENT] == "support-bot" and labels[names.LABEL_TRACK] == "stable"
    assert labels[names.LABEL_REVISION] == _track(agent).revision
    assert all(not key.startswith("argocd.argoproj.io") for key in labels)
    assert deployment["metadata"]["ownerReferences"][0]["controller"] is True


def test_replicas_left_out_while_autoscaling() -> None:
    agent = _agent()
    assert "replicas" not in children.deployment(agent, _track(agent, replicas=None))["spec"]
    hpa = children.horizontal_pod_autoscaler(agent)
    assert hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == "support-bot"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10
    no_scaling = agent.spec.model_copy(update={"autoscaling": None, "replicas": 1})
    assert children.horizontal_pod_autoscaler(_agent(spec=no_scaling)) is None
    assert children.pod_disruption_budget(_agent(spec=no_scaling)) is None
    assert children.pod_disruption_budget(agent)["spec"]["maxUnavailable"] == 1


def test_network_policy_defaults_to_own_namespace() -> None:
    agent = _agent(spec=_agent().spec.model_copy(update={"access": None}))
    policy = children.network_policy(agent)
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {53, 443, 6379} <= ports
    allowed = children.network_policy(_agent())
    selectors = allowed["spec"]["ingress"][0]["from"]
    assert selectors[1]["namespaceSelector"]["matchExpressions"][0]["values"] == ["frontend"]


def test_revision_config_map_is_immutable_and_secret_free() -> None:
    agent = _agent()
    track = _track(agent)
    cm = children.revision_config_map(agent, track, build_runtime_config(agent, track.revision))
    assert cm["immutable"] is True and cm["metadata"]["name"] == f"support-bot-config-{track.revision}"
    rebuilt = children.track_from_config_map(cm, "stable", 3)
    assert rebuilt.image == track.image and rebuilt.mounts == track.mounts and rebuilt.revision == track.revision


def test_redis_statefulset_keeps_password_out_of_the_spec() -> None:
    policy = StatePolicySpec.model_validate(load_sample("chat-sessions-statepolicy.yaml")["spec"])
    sts = state_store.stateful_set("chat-sessions", "support", "uid", policy, "redis:7")
    text = yaml.safe_dump(sts)
    assert "requirepass" not in text
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    secret = state_store.password_secret("chat-sessions", "support", "uid", "pw")
    assert "requirepass pw" in secret["stringData"]["redis.conf"] and "appendonly yes" in secret["stringData"][
        "redis.conf"]


@pytest.mark.parametrize(("live", "want", "expected"), [
    ({"a": 1, "b": 2}, {"a": 1}, True),
    ({"a": 1}, {"a": 2}, False),
    ({"cpu": "500m"}, {"cpu": "0.5"}, True),
    ({"memory": "256Mi"}, {"memory": "268435456"}, True),
    ({"l": [{"x": 1, "y": 2}]}, {"l": [{"x": 1}]}, True),
    ({"l": [1, 2]}, {"l": [1]}, False),
    ({"flag": True}, {"flag": 1}, False),
])
def test_contains(live: dict[str, Any], want: dict[str, Any], expected: bool) -> None:
    assert contains(live, want) is expected


def test_needs_apply_ignores_server_added_fields() -> None:
    agent = _agent()
    desired = children.service(agent, "support-bot", None)
    live = json.loads(json.dumps(desired))
    live["metadata"]["resourceVersion"] = "7"
    live["spec"]["clusterIP"] = "10.0.0.1"
    live["spec"]["ports"][0]["targetPort"] = "http"
    assert not needs_apply(desired, live)
    live["spec"]["selector"] = {"hand": "edited"}
    assert needs_apply(desired, live)


def test_secret_hash_reveals_nothing() -> None:
    digest = secret_hash({"password": "c2VjcmV0"})
    assert "c2VjcmV0" not in digest and len(digest) == 16
    assert digest != secret_hash({"password": "b3RoZXI="})


def test_route_patch_rewrites_only_our_rules() -> None:
    from agentfleet_operator.builders.traffic_route import route_patch

    route = {"spec": {"rules": [
        {"matches": [{"path": {"value": "/bot"}}], "backendRefs": [{"name": "bot", "port": 8080}]},
        {"backendRefs": [{"name": "other", "port": 80}]},
        {"backendRefs": [{"name": "bot-stable", "port": 8080}, {"name": "legacy", "port": 80}]},
    ]}}
    ops = route_patch(route, "bot", 30, has_canary=True)
    assert [op["path"] for op in ops] == ["/spec/rules/0/backendRefs"]
    assert [(b["name"], b["weight"]) for b in ops[0]["value"]] == [("bot-stable", 70), ("bot-canary", 30)]
    route["spec"]["rules"][0]["backendRefs"] = ops[0]["value"]
    assert route_patch(route, "bot", 30, has_canary=True) == []  # already there: no write
    back = route_patch(route, "bot", 0, has_canary=False)
    assert back[0]["value"] == [{"group": "", "kind": "Service", "name": "bot-stable", "port": 8080, "weight": 100}]
