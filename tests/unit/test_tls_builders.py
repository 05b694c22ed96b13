"""TLS in what the operator builds: the serving certificate (spec.access.tls) mounted as a Secret volume
the kubelet updates in place, its content kept out of the revision (a rotation is reloaded, never
rolled), probes over HTTPS, the Service's appProtocol, an https endpoint; CA bundles
(spec.model.caBundleSecretRef, Connector spec.caBundleSecretRef) as files in the revision."""

from __future__ import annotations

from typing import Any

import pytest
from agentfleet_contract.runtime_config import RuntimeConfig
from agentfleet_operator import crdgen
from agentfleet_operator.api import AgentSpec, ConnectorSpec, reasons
from agentfleet_operator.api.kinds import ALL_KINDS
from agentfleet_operator.builders import agent_children as children
from agentfleet_operator.builders import agent_status as status_rules
from agentfleet_operator.builders.inputs import ResolvedAgent
from agentfleet_operator.builders.revision import revision_hash
from agentfleet_operator.builders.runtime_config import build_runtime_config, revision_inputs, secret_mounts

from tests.unit.store_view import StoreView

NS = "support"
SECRETS = "/var/run/agentfleet/secrets"


class _View(StoreView):
    """The store with the Agent's generated access Secret in place."""

    def __init__(self) -> None:
        super().__init__(NS)
        self.secret("bot-access", ["apiKey"])

    def resolved(self, name: str = "bot") -> tuple[Any, ResolvedAgent]:
        body = self.store.agent(NS, name)
        assert body is not None
        spec = AgentSpec.model_validate(body["spec"])
        res = self.resolve(name)
        agent = ResolvedAgent(
            name=name,
            namespace=NS,
            uid="u",
            spec=spec,
            image="runtime:1",
            prompt_text=res.prompt_text,
            connectors=tuple(res.connectors),
            state=res.state,
            access_secret=res.access_secret,
            secret_hashes=dict(res.secret_hashes),
        )
        return res, agent


def _spec(tls: str | None = "bot-tls", **model: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"provider": "openai-compatible", "name": "m", "endpoint": "https://llm.internal/v1", **model},
        "prompt": {"system": "hi"},
    }
    if tls:
        spec["access"] = {"tls": {"secretRef": {"name": tls}}}
    return spec


def _track(agent: ResolvedAgent) -> children.Track:
    revision = revision_hash(agent.image, revision_inputs(agent), agent.secret_hashes)
    mounts = {k: tuple(sorted(v)) for k, v in secret_mounts(agent).items()}
    return children.Track("stable", revision, agent.image, mounts, 2, tls=agent.tls_secret is not None)


def _tls_view(digest: str = "cert-1") -> _View:
    return _View().agent("bot", _spec()).secret("bot-tls", ["ca.crt", "tls.crt", "tls.key"], digest=digest)


def test_the_serving_certificate_is_a_secret_volume_and_file_paths_in_the_config() -> None:
    res, agent = _tls_view().resolved()
    assert res.problems == []
    config = build_runtime_config(agent, "r1")
    RuntimeConfig.model_validate(config)  # the runtime reads what the operator writes
    assert config["server"]["tls"] == {
        "certFile": f"{SECRETS}/bot-tls/tls.crt",
        "keyFile": f"{SECRETS}/bot-tls/tls.key",
    }
    assert "cert-1" not in str(config)

    pod = children.pod_template(agent, _track(agent))["spec"]
    (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "bot-tls"]
    # Only the two keys (not ca.crt), as files of a whole volume: the kubelet swaps them in place on
    # rotation. A subPath mount would never see the new files.
    assert volume["secret"]["items"] == [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {"name": volume["name"], "mountPath": f"{SECRETS}/bot-tls", "readOnly": True}
    assert all("subPath" not in m for m in pod["containers"][0]["volumeMounts"])


def test_a_rotated_certificate_is_not_a_new_revision_but_a_renamed_secret_is() -> None:
    _, before = _tls_view(digest="cert-1").resolved()
    _, rotated = _tls_view(digest="cert-2").resolved()
    assert "bot-tls" not in before.secret_hashes
    assert _track(rotated).revision == _track(before).revision  # cert-manager renewed it: no rollout

    renamed = _View().agent("bot", _spec(tls="bot-tls-2")).secret("bot-tls-2", ["tls.crt", "tls.key"])
    assert _track(renamed.resolved()[1]).revision != _track(before).revision
    plain = _View().agent("bot", _spec(tls=None))
    assert _track(plain.resolved()[1]).revision != _track(before).revision


def test_the_tls_secret_is_a_dependency_so_a_rotation_or_its_creation_is_seen() -> None:
    res, _ = _tls_view().resolved()
    assert ("Secret", NS, "bot-tls") in res.dependencies


@pytest.mark.parametrize(
    ("keys", "reason", "words"),
    [
        (None, reasons.SECRET_NOT_FOUND, "Secret bot-tls (serving certificate) not found in namespace support"),
        (["tls.crt"], reasons.SECRET_KEY_MISSING, "has no key tls.key (spec.access.tls needs a kubernetes.io/tls"),
        (["ca.crt"], reasons.SECRET_KEY_MISSING, "has no key tls.crt, tls.key"),
    ],
)
def test_a_missing_tls_secret_or_key_is_a_condition_and_recovers(
    keys: list[str] | None, reason: str, words: str
) -> None:
    view = _View().agent("bot", _spec())
    if keys is not None:
        view.secret("bot-tls", keys)
    res, _ = view.resolved()
    assert [(p.area, p.reason) for p in res.problems] == [("secrets", reason)]
    assert words in res.problems[0].message
    update = status_rules.agent_status(
        status_rules.ObservedAgent("bot", NS, tls=True), None, res, status_rules.ReplicaTarget(spec_replicas=1)
    )
    ready = next(c for c in update.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == (False, reason)
    # It appears: resolved, no condition left.
    view.secret("bot-tls", ["tls.crt", "tls.key"])
    assert view.resolved()[0].problems == []


def test_probes_are_https_and_the_service_says_https_only_with_tls() -> None:
    _, agent = _tls_view().resolved()
    container = children.pod_template(agent, _track(agent))["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTPS"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTPS"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    (port,) = children.service(agent, "bot", None)["spec"]["ports"]
    assert port == {"name": "https", "port": 8080, "targetPort": "http", "protocol": "TCP", "appProtocol": "https"}

    _, plain = _View().agent("bot", _spec(tls=None)).resolved()
    container = children.pod_template(plain, _track(plain))["spec"]["containers"][0]
    assert "scheme" not in container["readinessProbe"]["httpGet"]
    (port,) = children.service(plain, "bot", None)["spec"]["ports"]
    assert port == {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}


def test_an_older_revisions_track_keeps_its_own_probe_scheme() -> None:
    """A canary turning TLS on: the stable pods (an older, plain revision) keep probing over HTTP."""
    _, agent = _tls_view().resolved()
    track = _track(agent)
    config_map = children.revision_config_map(agent, track, build_runtime_config(agent, track.revision))
    assert config_map["metadata"]["annotations"]["agentfleet.dev/tls"] == "true"
    assert children.track_from_config_map(config_map, "canary", 1).tls
    _, plain = _View().agent("bot", _spec(tls=None)).resolved()
    plain_track = _track(plain)
    plain_map = children.revision_config_map(plain, plain_track, build_runtime_config(plain, plain_track.revision))
    assert "agentfleet.dev/tls" not in plain_map["metadata"]["annotations"]
    rebuilt = children.track_from_config_map(plain_map, "stable", 2)
    assert not rebuilt.tls
    # Built for the current (TLS) spec, the stable pods of the plain revision still probe plain HTTP.
    container = children.pod_template(agent, rebuilt)["spec"]["containers"][0]
    assert "scheme" not in container["readinessProbe"]["httpGet"]


def test_the_endpoint_is_https_with_tls() -> None:
    assert status_rules.ObservedAgent("bot", NS, tls=True).endpoint == "https://bot.support.svc:8080"
    assert status_rules.ObservedAgent("bot", NS).endpoint == "http://bot.support.svc:8080"
    fields = status_rules.columns(status_rules.ObservedAgent("bot", NS, tls=True), 1)
    assert fields["endpoint"] == "https://bot.support.svc:8080"


# CA bundles ----------------------------------------------------------------------------------------


def test_the_model_ca_bundle_is_a_file_and_part_of_the_revision() -> None:
    view = _View().agent("bot", _spec(tls=None, caBundleSecretRef={"name": "corp-ca"}))
    res, _ = view.resolved()
    assert [p.reason for p in res.problems] == [reasons.SECRET_NOT_FOUND]
    assert "Secret corp-ca (model CA bundle) not found" in res.problems[0].message
    view.secret("corp-ca", ["tls.crt"])
    res, _ = view.resolved()
    assert [p.reason for p in res.problems] == [reasons.SECRET_KEY_MISSING]
    assert "has no key ca.crt" in res.problems[0].message

    view.secret("corp-ca", ["ca.crt"], digest="ca-1")
    res, agent = view.resolved()
    assert res.problems == []
    config = build_runtime_config(agent, "r1")
    RuntimeConfig.model_validate(config)
    assert config["model"]["caFile"] == f"{SECRETS}/corp-ca/ca.crt"
    assert secret_mounts(agent)["corp-ca"] == {"ca.crt"}
    # A new CA is a new revision: trust changes roll out (and a canary catches a wrong bundle).
    _, changed = view.secret("corp-ca", ["ca.crt"], digest="ca-2").resolved()
    assert _track(changed).revision != _track(agent).revision


def test_a_model_ca_bundle_with_its_own_key() -> None:
    view = _View().agent("bot", _spec(tls=None, caBundleSecretRef={"name": "bundle", "key": "root.pem"}))
    view.secret("bundle", ["root.pem"])
    _, agent = view.resolved()
    assert build_runtime_config(agent, "r1")["model"]["caFile"] == f"{SECRETS}/bundle/root.pem"


def _crd_spec(kind: str) -> dict[str, Any]:
    info = next(i for i in ALL_KINDS if i.kind == kind)
    return crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_the_crds_carry_the_new_fields_and_rules() -> None:
    agent = _crd_spec("Agent")["properties"]
    model = agent["model"]
    rule = next(r for r in model["x-kubernetes-validations"] if r.get("fieldPath") == ".caBundleSecretRef")
    assert "only be set when spec.model.provider is openai-compatible" in rule["message"]
    assert model["properties"]["caBundleSecretRef"]["properties"]["key"]["default"] == "ca.crt"
    tls = agent["access"]["properties"]["tls"]
    assert tls["required"] == ["secretRef"]
    assert "kubernetes.io/tls" in tls["properties"]["secretRef"]["description"]
    connector = _crd_spec("Connector")["properties"]
    assert connector["caBundleSecretRef"]["required"] == ["name"]


CRM = {
    "type": "http",
    "endpoint": "https://crm.internal/api",
    "tools": [{"name": "lookup", "path": "/c"}],
    "caBundleSecretRef": {"name": "corp-ca"},
}


def test_a_connector_ca_bundle_is_a_file_of_its_connector() -> None:
    agent_spec = {**_spec(tls=None), "connectors": [{"name": "crm"}]}
    view = _View().agent("bot", agent_spec).connector("crm", CRM)
    res, _ = view.resolved()
    assert [(p.area, p.reason) for p in res.problems] == [("connectors", reasons.SECRET_NOT_FOUND)]
    assert "CA bundle of Connector crm" in res.problems[0].message
    view.secret("corp-ca", ["ca.crt"], digest="ca-1")
    res, agent = view.resolved()
    assert res.problems == [] and res.secret_hashes["corp-ca"] == "ca-1"
    (connector,) = build_runtime_config(agent, "r1")["connectors"]
    assert connector["caFile"] == f"{SECRETS}/corp-ca/ca.crt"
    assert secret_mounts(agent)["corp-ca"] == {"ca.crt"}


def test_an_agent_connector_calls_a_tls_target_over_https_with_its_ca() -> None:
    caller = {**_spec(tls=None), "connectors": [{"name": "billing-desk"}]}
    target = {**_spec(tls="billing-tls")}
    view = (
        _View()
        .agent("bot", caller)
        .agent("billing", target)
        .connector(
            "billing-desk", {"type": "agent", "agentRef": {"name": "billing"}, "caBundleSecretRef": {"name": "ca"}}
        )
        .secret("billing-access", ["apiKey"])
        .secret("ca", ["ca.crt"])
    )
    res, agent = view.resolved()
    assert res.problems == []
    (connector,) = build_runtime_config(agent, "r1")["connectors"]
    assert connector["endpoint"] == "https://billing.support.svc:8080"
    assert connector["caFile"] == f"{SECRETS}/ca/ca.crt"
    # The target's serving certificate (its private key) is never mounted into the caller.
    assert "billing-tls" not in secret_mounts(agent)


def test_the_connector_model_takes_a_ca_bundle_for_every_type() -> None:
    assert ConnectorSpec.model_validate(CRM).ca_bundle_secret_ref is not None
    spec = ConnectorSpec.model_validate(CRM)
    assert spec.ca_bundle_secret_ref is not None and spec.ca_bundle_secret_ref.key == "ca.crt"
