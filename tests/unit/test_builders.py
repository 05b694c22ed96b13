"""The pure builders: every field of every child comes from here, so the invariants are tested here."""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import replace
from typing import Any

import pytest
import yaml
from agentfleet_operator.api import AgentSpec, ConnectorSpec, StatePolicySpec
from agentfleet_operator.builders import agent_children as children
from agentfleet_operator.builders import state_store
from agentfleet_operator.builders.drift import contains, needs_apply
from agentfleet_operator.builders.egress import EgressSettings
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
        name="support-bot",
        namespace="support",
        uid="uid-1",
        spec=spec,
        image="runtime:1",
        prompt_text=spec.prompt.system or "",
        connectors=(ResolvedConnector(ref=spec.connectors[0], spec=connector),),
        state=ResolvedState(
            name="chat-sessions",
            spec=policy,
            redis_url=state_store.redis_url("chat-sessions", "support"),
            password_secret=("chat-sessions-redis-auth", "password"),
        ),
        access_secret="support-bot-access",
        secret_hashes={
            "crm-creds": "h1",
            "llm-key": "h2",
            "state-key": "h3",
            "chat-sessions-redis-auth": "h4",
            "support-bot-access": "h5",
        },
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


def _with_connector(agent: ResolvedAgent, edit: Any, tools: tuple[str, ...] | None = None) -> ResolvedAgent:
    """The Agent with its Connector's spec edited as a user would edit the manifest (camelCase YAML)."""
    doc = copy.deepcopy(load_sample("crm-connector.yaml")["spec"])
    edit(doc)
    ref = agent.connectors[0].ref
    if tools is not None:
        ref = ref.model_copy(update={"tools": list(tools)})
    return _agent(connectors=(ResolvedConnector(ref=ref, spec=ConnectorSpec.model_validate(doc)),))


CONNECTOR_EDITS: dict[str, Any] = {
    "endpoint": lambda d: d.update(endpoint="https://crm2.example.com/api"),
    "timeoutSeconds": lambda d: d.update(timeoutSeconds=30),
    "retries": lambda d: d.update(retries=0),
    "rateLimit": lambda d: d.update(rateLimit={"requestsPerSecond": 1}),
    "auth.tokenURL": lambda d: d["auth"].update(tokenURL="https://crm.example.com/oauth2/token"),
    "auth.scopes": lambda d: d["auth"].update(scopes=["customers.read"]),
    "auth.type": lambda d: d.update(auth={"type": "bearer", "secretRef": {"name": "crm-creds"}}),
    "auth.secretRef": lambda d: d["auth"].update(secretRef={"name": "crm-creds-2"}),
    "tool.description": lambda d: d["tools"][0].update(description="Look a customer up"),
    "tool.method": lambda d: d["tools"][1].update(method="PUT"),
    "tool.path": lambda d: d["tools"][0].update(path="/v2/customers"),
    "tool.parameters": lambda d: d["tools"][0]["parameters"]["required"].append("name"),
}
CLOSE_TICKET = {"name": "close_ticket", "description": "Close a ticket", "method": "POST", "path": "/tickets/close"}


@pytest.mark.parametrize("field", sorted(CONNECTOR_EDITS))
def test_revision_changes_with_every_connector_field_the_pods_run(field: str) -> None:
    agent = _agent()
    base = _track(agent).revision
    assert _track(_with_connector(agent, lambda d: None)).revision == base  # the sample itself: same revision
    assert _track(_with_connector(agent, CONNECTOR_EDITS[field])).revision != base


def test_revision_changes_with_a_tool_added_when_the_agent_takes_all_tools() -> None:
    everything = _with_connector(_agent(), lambda d: None, tools=())  # empty list = all the Connector's tools
    added = _with_connector(_agent(), lambda d: d["tools"].append(CLOSE_TICKET), tools=())
    assert _track(added).revision != _track(everything).revision
    # The sample Agent names its two tools, so a third one reaches no pod and rolls nothing.
    named = _with_connector(_agent(), lambda d: d["tools"].append(CLOSE_TICKET))
    assert _track(named).revision == _track(_agent()).revision


def test_revision_ignores_a_connector_tool_the_agent_does_not_select() -> None:
    # The pods never see a tool filtered out by the Agent, so editing it must not roll them.
    narrowed = _with_connector(_agent(), lambda d: None, tools=("lookup_customer",))
    base = _track(narrowed).revision
    edited = _with_connector(_agent(), CONNECTOR_EDITS["tool.method"], tools=("lookup_customer",))
    assert _track(edited).revision == base
    assert _track(_with_connector(_agent(), CONNECTOR_EDITS["tool.path"], tools=("lookup_customer",))).revision != base


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
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "env" not in container  # secrets only as files
    secret_volumes = {v["secret"]["secretName"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    assert secret_volumes["crm-creds"]["items"] == [
        {"key": "clientId", "path": "clientId"},
        {"key": "clientSecret", "path": "clientSecret"},
    ]
    assert "items" not in secret_volumes["support-bot-access"]  # every key is an accepted caller key
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    # Exactly the operator's own set, written out here rather than taken from names.agent_labels: any
    # other label on a pod (a parent's, Argo CD's tracking label) is a bug. The builders never see the
    # parent's labels; that they never reach a child in the cluster is shown by
    # tests/integration/test_child_labels.py with an Agent carrying Argo CD's tracking label.
    assert labels == {
        "app.kubernetes.io/name": "agent-runtime",
        "app.kubernetes.io/component": "agent",
        "app.kubernetes.io/part-of": "agentfleet",
        "app.kubernetes.io/managed-by": "agentfleet",
        "agentfleet.dev/agent": "support-bot",
        "agentfleet.dev/track": "stable",
        "agentfleet.dev/revision": _track(agent).revision,
    }
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
    # Endpoints set here, not taken from the samples (which point at the local demo services), so each
    # egress port below has one known source: DNS, the model, the CRM, its token URL, Redis.
    def public_crm(doc: dict[str, Any]) -> None:
        doc["endpoint"] = "https://crm.example.com/api"
        doc["auth"]["tokenURL"] = "https://login.example.com:8443/oauth/token"
        doc["egress"] = ["203.0.113.0/24"]

    base = _with_connector(_agent(), public_crm)
    model = base.spec.model.model_copy(update={"endpoint": "http://llm.internal:8000/v1", "egress": ["10.1.2.3/32"]})
    agent = _agent(spec=base.spec.model_copy(update={"access": None, "model": model}), connectors=base.connectors)
    policy = children.network_policy(agent)
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {53, 8000, 443, 8443, "redis"}  # the provisioned Redis pods' port, by name
    assert all(rule["to"] for rule in policy["spec"]["egress"])  # a rule without peers would allow any address
    allowed = children.network_policy(_agent())
    selectors = allowed["spec"]["ingress"][0]["from"]
    assert selectors[1]["namespaceSelector"]["matchExpressions"][0]["values"] == ["frontend"]


def test_network_policy_lets_the_metrics_namespaces_scrape_the_agent_port() -> None:
    # Prometheus (in `monitoring` by default) must reach /metrics where policies are enforced, or
    # the canary analysis sees no data; the operator's config names where it runs.
    default = children.network_policy(_agent())["spec"]["ingress"]
    assert len(default) == 2
    scrape = default[1]
    assert scrape["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["monitoring"]
    assert scrape["ports"] == [{"protocol": "TCP", "port": 8080}]
    none = replace(_agent(), egress_settings=EgressSettings(metrics_namespaces=()))
    assert len(children.network_policy(none)["spec"]["ingress"]) == 1
    own = replace(_agent(), egress_settings=EgressSettings(metrics_namespaces=(_agent().namespace,)))
    assert len(children.network_policy(own)["spec"]["ingress"]) == 1  # its own namespace is allowed already


def test_egress_cidrs_are_not_part_of_the_revision() -> None:
    # Where the pods may send traffic is the NetworkPolicy's business; the pods run the same.
    agent = _agent()
    base = _track(agent).revision
    assert _track(_with_connector(agent, lambda d: d.update(egress=["203.0.113.0/24"]))).revision == base
    model = agent.spec.model.model_copy(update={"egress": ["203.0.113.0/24"]})
    assert _track(_agent(spec=agent.spec.model_copy(update={"model": model}))).revision == base


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
    assert (
        "requirepass pw" in secret["stringData"]["redis.conf"]
        and "appendonly yes" in secret["stringData"]["redis.conf"]
    )


@pytest.mark.parametrize(
    ("live", "want", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"cpu": "500m"}, {"cpu": "0.5"}, True),
        ({"memory": "256Mi"}, {"memory": "268435456"}, True),
        ({"l": [{"x": 1, "y": 2}]}, {"l": [{"x": 1}]}, True),
        ({"l": [1, 2]}, {"l": [1]}, False),
        ({"flag": True}, {"flag": 1}, False),
    ],
)
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


@pytest.mark.parametrize("plain", [b"s3cr", b"secret", b"x" * 4096], ids=["4-bytes", "6-bytes", "4-KiB"])
def test_secret_hash_reveals_nothing(plain: bytes) -> None:
    stored = base64.b64encode(plain).decode()  # Secret data is base64, as the API server returns it
    digest = secret_hash({"password": stored})
    # Not an encoding of the value: the same 16 hex characters whatever its length, and no form of the
    # value in it (a hex value of up to 8 bytes would fit in 16 characters, so that form is checked too).
    assert re.fullmatch(r"[0-9a-f]{16}", digest), digest
    for form in (stored, plain.decode(), plain.hex(), plain.hex()[:16]):
        assert form not in digest, f"digest {digest} carries the value as {form!r}"
    # Still a hash of the data: any change of value is a change of digest; key order is not.
    assert digest != secret_hash({"password": base64.b64encode(plain + b"!").decode()})
    assert secret_hash({"a": stored, "b": "eA=="}) == secret_hash({"b": "eA==", "a": stored})


def test_route_patch_rewrites_only_our_rules() -> None:
    from agentfleet_operator.builders.traffic_route import route_patch

    route = {
        "spec": {
            "rules": [
                {"matches": [{"path": {"value": "/bot"}}], "backendRefs": [{"name": "bot", "port": 8080}]},
                {"backendRefs": [{"name": "other", "port": 80}]},
                {"backendRefs": [{"name": "bot-stable", "port": 8080}, {"name": "legacy", "port": 80}]},
            ]
        }
    }
    ops = route_patch(route, "bot", 30, has_canary=True)
    assert [op["path"] for op in ops] == ["/spec/rules/0/backendRefs"]
    assert [(b["name"], b["weight"]) for b in ops[0]["value"]] == [("bot-stable", 70), ("bot-canary", 30)]
    route["spec"]["rules"][0]["backendRefs"] = ops[0]["value"]
    assert route_patch(route, "bot", 30, has_canary=True) == []  # already there: no write
    back = route_patch(route, "bot", 0, has_canary=False)
    assert back[0]["value"] == [{"group": "", "kind": "Service", "name": "bot-stable", "port": 8080, "weight": 100}]


@pytest.mark.parametrize(
    ("pattern", "accepted"), [("^hello (?P<name>\\w+)", True), ("([unclosed", False), ("(?<=a+)b", False)]
)
def test_a_rule_pattern_the_runtime_cannot_compile_is_refused_by_the_model(pattern: str, accepted: bool) -> None:
    # The runtime compiles each rule at start; a pattern it cannot compile must be InvalidSpec (the
    # reconciler's answer to a model error), not a runtime config that fails to build on every reconcile.
    spec = {
        "model": {"provider": "rules", "name": "r", "rules": [{"pattern": pattern, "reply": "x"}]},
        "prompt": {"system": "s"},
    }
    if accepted:
        AgentSpec.model_validate(spec)
    else:
        with pytest.raises(ValueError, match="not a valid regular expression"):
            AgentSpec.model_validate(spec)


@pytest.mark.parametrize("seconds", [1, 45, 600])
def test_model_timeout_seconds_reaches_the_runtime_as_its_deadline(seconds: int) -> None:
    from agentfleet_contract.runtime_config import RuntimeConfig

    spec = _agent().spec
    timed = _agent(spec=spec.model_copy(update={"model": spec.model.model_copy(update={"timeout_seconds": seconds})}))
    config = build_runtime_config(timed, "r")
    assert config["model"]["deadlineSeconds"] == seconds
    assert json.dumps(config["model"]["deadlineSeconds"]) == str(seconds)  # whole seconds stay whole
    assert RuntimeConfig.model_validate(config).model.deadline_seconds == seconds
    assert "deadlineSeconds" not in build_runtime_config(_agent(), "r")["model"]  # unset: not written
    assert _track(timed).revision != _track(_agent()).revision


@pytest.mark.parametrize("seconds", [0, 601, 1.5])
def test_model_timeout_seconds_out_of_range_is_refused(seconds: float) -> None:
    doc = copy.deepcopy(load_sample("support-bot-agent.yaml")["spec"])
    doc["model"]["timeoutSeconds"] = seconds
    with pytest.raises(ValueError, match="timeoutSeconds"):
        AgentSpec.model_validate(doc)
