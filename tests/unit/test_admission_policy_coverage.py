"""The confused-deputy policy checks every Secret and ConfigMap reference the API has.

Walks the pydantic models (the source of truth of the CRDs) for reference fields and compares them
with what manifests/base/operator/admission-policy.yaml checks: a model that gains a reference the
policy does not know fails here, before it becomes a way to read a Secret through the operator.
The policy's behaviour on a real API server is tests/integration/test_admission_policy.py.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from agentfleet_operator.api import Agent, Connector, StatePolicy
from agentfleet_operator.api.base import ConfigMapKeyReference, SecretKeyReference
from pydantic import BaseModel

POLICY = Path(__file__).resolve().parents[2] / "manifests" / "base" / "operator" / "admission-policy.yaml"
# A field whose wire name says it names a Secret or a ConfigMap.
REFERENCE_NAME = re.compile(r"(secret|configMap)Ref$", re.IGNORECASE)


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, unions and lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict, tuple, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in models_in(arg)]
    return []


def references(model: type[BaseModel], path: str) -> set[tuple[str, str]]:
    """(wire path, resource) of every Secret/ConfigMap reference under a model."""
    found: set[tuple[str, str]] = set()
    for name, field in model.model_fields.items():
        wire = field.alias or name
        here = f"{path}.{wire}"
        inner = models_in(field.annotation)
        typed = {m for m in inner if m in (SecretKeyReference, ConfigMapKeyReference)}
        if REFERENCE_NAME.search(wire) or typed:
            # Name and type must agree, so that no reference hides behind another name.
            assert REFERENCE_NAME.search(wire), f"{here} holds {typed} but is not named *SecretRef/*configMapRef"
            found.add((here, "configmaps" if wire.lower().endswith("configmapref") else "secrets"))
            continue
        for sub in inner:
            found |= references(sub, here)
    return found


# References to other objects that make the operator hand over a Secret all the same: the policy checks
# them against the Secrets as a whole ("*"), since it cannot look up which one the object resolves to.
INDIRECT: dict[tuple[str, str], str] = {
    ("Connector", "spec.agentRef"): "the target Agent's caller key is mounted into the Agents using it",
}
# References to other objects, each reviewed for the same question (can its author make the operator
# hand over what they may not read?) and why the policy leaves it alone. A new reference of any kind
# fails test_every_other_reference_was_reviewed until it is added here, to INDIRECT or to the policy.
REVIEWED: dict[tuple[str, str], str] = {
    # Known gap (docs/operations.md): the Agent's pods get the Connector's or StatePolicy's Secrets
    # mounted, and an Agent author who sets spec.image runs code of theirs beside them. Checking it
    # needs the referenced object's Secrets, which a policy cannot look up.
    ("Agent", "spec.connectors"): "a Connector of the namespace; its author's Secret rights were checked",
    ("Agent", "spec.statePolicyRef"): "a StatePolicy of the namespace; its author's Secret rights were checked",
    ("Agent", "spec.rollout.canary.trafficRouting.httpRoute"): (
        "the operator rewrites only the route's rules whose backendRefs all are this Agent's own Services"
    ),
}


def other_references(model: type[BaseModel], path: str) -> set[str]:
    """Wire paths of every other field that names an object (by its name or its model's name)."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        wire = field.alias or name
        here = f"{path}.{wire}"
        inner = models_in(field.annotation)
        if REFERENCE_NAME.search(wire):
            continue
        if wire.endswith(("Ref", "Refs")) or any(m.__name__.endswith(("Ref", "Reference")) for m in inner):
            found.add(here)
        for sub in inner:
            found |= other_references(sub, here)
    return found


def model_references() -> set[tuple[str, str, str]]:
    return {
        (kind.__name__, path, resource)
        for kind in (Agent, Connector, StatePolicy)
        for path, resource in references(kind.model_fields["spec"].annotation, "spec")
    }


def policy_checks() -> set[tuple[str, str, str]]:
    """(kind, field, resource) of every validation: the field the message names, the resource the
    authorizer is asked about, and the kind the variable holding the name is computed for."""
    policy = next(d for d in yaml.safe_load_all(POLICY.read_text()) if d["kind"] == "ValidatingAdmissionPolicy")
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    checks = set()
    for validation in policy["spec"]["validations"]:
        [variable] = re.findall(r"variables\.(\w+) == ''", validation["expression"])
        [resource] = re.findall(r"\.resource\('(\w+)'\)", validation["expression"])
        if f".name(variables.{variable}).check('get').allowed()" not in validation["expression"]:
            assert ".namespace(request.namespace).check('get').allowed()" in validation["expression"]
            resource += ":*"  # every object of the resource in the namespace
        [field] = re.findall(r"^'(spec\.[\w.]+): '", validation["messageExpression"])
        assert f"variables.{variable}" in validation["messageExpression"]
        [kind] = re.findall(r"request\.kind\.kind == '(\w+)'", variables[variable])
        assert f"? object.{field}.name : ''" in variables[variable], variables[variable]
        checks.add((kind, field, resource))
    return checks


def test_the_models_have_the_references_the_policy_was_written_for() -> None:
    # If this fails because a reference was added, add a check for it to the policy, not only here.
    assert model_references() == {
        ("Agent", "spec.model.credentialsSecretRef", "secrets"),
        ("Agent", "spec.prompt.configMapRef", "configmaps"),
        ("Agent", "spec.access.apiKeySecretRef", "secrets"),
        ("Agent", "spec.model.caBundleSecretRef", "secrets"),
        ("Agent", "spec.access.tls.secretRef", "secrets"),
        ("Connector", "spec.auth.secretRef", "secrets"),
        ("Connector", "spec.caBundleSecretRef", "secrets"),
        ("StatePolicy", "spec.store.redis.passwordSecretRef", "secrets"),
        ("StatePolicy", "spec.encryption.keySecretRef", "secrets"),
    }


def test_the_policy_checks_every_reference_of_the_models() -> None:
    indirect = {(kind, field, "secrets:*") for kind, field in INDIRECT}
    assert policy_checks() == model_references() | indirect


def test_every_other_reference_was_reviewed() -> None:
    found = {
        (kind.__name__, path)
        for kind in (Agent, Connector, StatePolicy)
        for path in other_references(kind.model_fields["spec"].annotation, "spec")
    }
    assert found == REVIEWED.keys() | INDIRECT.keys()
    assert not REVIEWED.keys() & INDIRECT.keys()
