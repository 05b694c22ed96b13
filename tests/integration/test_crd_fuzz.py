"""Fuzzed specs against the real API server: each is refused at admission or, when accepted, is a
spec our models accept too (nothing invalid is stored); the operator survives every stored one."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from agentfleet_operator.api import Agent, Connector, StatePolicy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
BASES = {
    "Agent": yaml.safe_load((SAMPLES / "support-bot-agent.yaml").read_text()),
    "Connector": yaml.safe_load((SAMPLES / "crm-connector.yaml").read_text()),
    "StatePolicy": yaml.safe_load((SAMPLES / "chat-sessions-statepolicy.yaml").read_text()),
}
MODELS = {"Agent": Agent, "Connector": Connector, "StatePolicy": StatePolicy}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2000) | st.floats(-3, 200, allow_nan=False)
    | st.sampled_from(["", "x", "Canary", "rules", "http", "redis", "oauth2ClientCredentials", "60s", "https://a/v1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["name", "key", "type"]), inner,
                                                                 max_size=2),
    max_leaves=4,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(BASES)))
    doc = copy.deepcopy(BASES[kind])
    spec = doc["spec"]
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(spec)
        path = draw(st.sampled_from(paths))
        parent: Any = spec
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    return doc


@pytest.fixture(scope="module")
def fuzz_namespace(kubectl: Kubectl) -> str:
    name = "af-fuzz"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(doc=mutated_specs())
def test_fuzzed_specs_are_refused_or_valid(operator: OperatorProcess, kubectl: Kubectl, fuzz_namespace: str,
                                           doc: dict[str, Any]) -> None:
    doc["metadata"] = {"name": "fuzz", "namespace": fuzz_namespace}
    result = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(doc))
    if result.returncode != 0:
        assert "is invalid" in result.stderr or "Error from server" in result.stderr, result.stderr
        assert "Internal error" not in result.stderr, result.stderr
        return
    stored = json.loads(result.stdout)
    try:
        MODELS[doc["kind"]].model_validate(stored)
    except ValidationError as exc:  # the schema let through what the operator would not understand
        pytest.fail(f"accepted but invalid for the operator: {exc.errors()[:2]}\n{json.dumps(stored['spec'])[:800]}")
    # Store it for real and let the operator reconcile it: it must not crash on anything admitted.
    created = kubectl("apply", "-f", "-", stdin=json.dumps(doc))
    assert created.returncode == 0, created.stderr
    assert operator.process is not None and operator.process.poll() is None, operator.log_tail()


def test_operator_survived_the_fuzzing(operator: OperatorProcess, kubectl: Kubectl, fuzz_namespace: str) -> None:
    assert operator.process is not None and operator.process.poll() is None, operator.log_tail()
    wait_for("operator ready", operator.ready, timeout=30)
    # Whatever was admitted is handled: a condition at worst, never an exception in a reconcile.
    errors = [line for line in operator.log_path.read_text(errors="replace").splitlines()
              if '"level": "error"' in line and fuzz_namespace in line]
    assert errors == [], errors[:3]
