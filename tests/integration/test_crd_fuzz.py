"""Fuzzed specs against the real API server: each is refused at admission naming a field it changed or,
when accepted, is a spec our models accept too (nothing invalid is stored); the operator survives every
stored one. A run must see both outcomes, or it tested only half of the claim."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agentfleet_operator.api import Agent, Connector, StatePolicy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import queue_drained, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
BASES = {
    "Agent": yaml.safe_load((SAMPLES / "support-bot-agent.yaml").read_text()),
    "Connector": yaml.safe_load((SAMPLES / "crm-connector.yaml").read_text()),
    "StatePolicy": yaml.safe_load((SAMPLES / "chat-sessions-statepolicy.yaml").read_text()),
}
MODELS = {"Agent": Agent, "Connector": Connector, "StatePolicy": StatePolicy}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 2000)
    | st.floats(-3, 200, allow_nan=False)
    | st.sampled_from(["", "x", "Canary", "rules", "http", "redis", "oauth2ClientCredentials", "60s", "https://a/v1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["name", "key", "type"]), inner, max_size=2)
    ),
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
def mutated_specs(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """A sample with one to three fields replaced or removed, and the paths (under spec) it changed."""
    kind = draw(st.sampled_from(sorted(BASES)))
    doc = copy.deepcopy(BASES[kind])
    spec = doc["spec"]
    changed: list[tuple[Any, ...]] = []
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
        changed.append(path)
    return doc, changed


# A field path as the API server names it in a refusal: spec.connectors[0].name, spec.model, spec.
FIELD_IN_ERROR = re.compile(r"\b(spec(?:\.[A-Za-z0-9_]+|\[\d+\])*)(?=:| in body|\")")


def _field(path: tuple[Any, ...]) -> str:
    return "spec" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def _related(named: str, mutated: str) -> bool:
    """One contains the other: a rule on a parent object (spec.prompt: exactly one of ...) or a field
    below a replaced one (spec.model replaced, spec.model.provider: Required value) both count. So
    does a sibling: a cross-field rule of the parent names the field it constrains, which need not
    be the one that changed (spec.auth.type changed to none, spec.auth.secretRef: must not be set)."""

    def contains(longer: str, shorter: str) -> bool:
        return longer == shorter or longer.startswith((shorter + ".", shorter + "["))

    parent = mutated.rsplit(".", 1)[0] if "." in mutated else mutated
    return any(contains(a, b) for a, b in ((named, mutated), (mutated, named))) or (
        parent != "spec" and contains(named, parent)
    )


@pytest.fixture(scope="module")
def fuzz_namespace(kubectl: Kubectl) -> Iterator[str]:
    # Fresh each run: a namespace left terminating by the last run would refuse every create as Forbidden.
    name = f"af-fuzz-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name, check=True)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def test_fuzzed_specs_are_refused_naming_the_field_or_valid_and_the_operator_survives(
    operator: OperatorProcess, kubectl: Kubectl, fuzz_namespace: str
) -> None:
    outcomes: Counter[str] = Counter()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated=mutated_specs())
    def refused_or_valid(mutated: tuple[dict[str, Any], list[tuple[Any, ...]]]) -> None:
        doc, paths = mutated
        # A name per example: a stored "fuzz" would answer every later create of its kind AlreadyExists.
        name = f"fuzz-{sum(outcomes.values())}"
        doc["metadata"] = {"name": name, "namespace": fuzz_namespace}
        result = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(doc))
        if result.returncode != 0:
            # Only a schema or CEL refusal counts (or, for a key the schema lacks, kubectl's strict field
            # validation), and it must name a field this example changed.
            assert (
                f'{doc["kind"]} "{name}" is invalid' in result.stderr
                or "strict decoding error: unknown field" in result.stderr
            ), result.stderr
            named = FIELD_IN_ERROR.findall(result.stderr)
            mutated_fields = [_field(path) for path in paths]
            assert any(_related(n, m) for n in named for m in mutated_fields), (
                f"refusal names {named}, the example changed {mutated_fields}:\n{result.stderr}"
            )
            outcomes["refused"] += 1
            return
        stored = json.loads(result.stdout)
        try:
            MODELS[doc["kind"]].model_validate(stored)
        except ValidationError as exc:  # the schema let through what the operator would not understand
            pytest.fail(
                f"accepted but invalid for the operator: {exc.errors()[:2]}\n{json.dumps(stored['spec'])[:800]}"
            )
        # Store it for real and let the operator reconcile it: it must not crash on anything admitted.
        created = kubectl("apply", "-f", "-", stdin=json.dumps(doc))
        assert created.returncode == 0, created.stderr
        outcomes["admitted"] += 1

    refused_or_valid()
    # Either side at zero means the fuzzing tested half of its claim or nothing at all.
    assert outcomes["admitted"] > 0 and outcomes["refused"] > 0, outcomes
    assert operator.process is not None and operator.process.poll() is None, operator.log_tail()
    # Read the log only once the operator has worked through everything the fuzzing stored.
    wait_for("operator done with the fuzzed objects", lambda: queue_drained(operator), timeout=120)
    # Whatever was admitted is handled: a condition at worst, never an exception in a reconcile.
    errors = [
        line
        for line in operator.log_path.read_text(errors="replace").splitlines()
        if '"level": "error"' in line and fuzz_namespace in line
    ]
    assert errors == [], errors[:3]
