"""The CRDs are generated from the models; these tests keep the two honest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from agentfleet_operator import crdgen
from agentfleet_operator.api import AGENT, ALL_KINDS, Agent, Connector, StatePolicy

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_match_the_models() -> None:
    for name, text in crdgen.render_all().items():
        committed = ROOT / "crds" / name
        assert committed.exists(), f"crds/{name} missing: run `make crds`"
        assert committed.read_text() == text, f"crds/{name} is stale: run `make crds`"


def _walk(schema: dict[str, Any], path: str = ""):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda i: i.kind)
def test_schema_is_structural_and_documented(info) -> None:
    root = crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(root):
        assert "$ref" not in node and "title" not in node, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf outside int-or-string"
        else:
            assert "type" in node, f"{path} has no type"
        if path.startswith(".spec.") or path.startswith(".status."):
            leaf = path.rsplit(".", 1)[-1]
            if not leaf.endswith("[]") and not leaf.endswith("{}"):
                assert node.get("description"), f"{info.kind}{path} has no description"


def test_status_schema_has_no_defaults() -> None:
    for info in ALL_KINDS:
        status = crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert all("default" not in node for _, node in _walk(status)), info.kind


def test_agent_crd_names_columns_and_subresources() -> None:
    crd = crdgen.build_crd(AGENT)
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["agt"] and names["categories"] == ["agentfleet"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")] == [
        "Ready",
        "Phase",
        "Model",
        "Canary",
        "Age",
    ]
    assert columns["Reason"]["priority"] == 1 and columns["Endpoint"]["priority"] == 1
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_every_cel_message_names_a_field() -> None:
    for info in ALL_KINDS:
        root = crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(root):
            for rule in node.get("x-kubernetes-validations", []):
                # Either the message starts with the field, or fieldPath makes the API server prefix it.
                named = rule["message"].split(" ")[0].rstrip(":").startswith(("spec.", "metadata."))
                assert named or rule.get("fieldPath", "").startswith((".spec.", ".metadata.")), (path, rule)


MODELS = {"Agent": Agent, "Connector": Connector, "StatePolicy": StatePolicy}


def test_samples_parse_with_the_models() -> None:
    seen = set()
    for path in sorted((ROOT / "manifests" / "samples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in MODELS:
                MODELS[doc["kind"]].model_validate(doc)
                seen.add(doc["kind"])
    assert seen == set(MODELS)


def test_wire_round_trip_keeps_camel_case() -> None:
    spec = {
        "model": {
            "provider": "openai-compatible",
            "name": "m",
            "endpoint": "http://x/v1",
            "credentialsSecretRef": {"name": "k", "key": "apiKey"},
        },
        "prompt": {"configMapRef": {"name": "p", "key": "system"}},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilization": 70},
        "rollout": {
            "strategy": "Canary",
            "canary": {
                "steps": [{"setWeight": 10}],
                "analysis": {"prometheusURL": "http://p:9090", "maxLatencyP95Seconds": 1.5},
            },
        },
    }
    wire = Agent.model_validate({"spec": spec}).spec.to_wire()
    assert wire["model"]["credentialsSecretRef"] == {"name": "k", "key": "apiKey"}
    assert wire["autoscaling"]["targetCPUUtilization"] == 70
    assert wire["rollout"]["canary"]["analysis"]["prometheusURL"] == "http://p:9090"
    assert wire["rollout"]["canary"]["analysis"]["maxLatencyP95Seconds"] == 1.5
