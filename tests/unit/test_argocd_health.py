"""The Argo CD health checks (manifests/argocd/health), run through a real Lua interpreter.

Argo CD runs health scripts in gopher-lua, a Lua 5.1, with `obj` as a global table built from the
object's JSON (lists 1-indexed, numbers as doubles, null as nil) and, for scripts configured in
argocd-cm, only the base, table and package libraries. The harness reproduces that with lupa's
Lua 5.1 and the same globals removed, so a script that calls string.format or math.floor fails
here as it would in Argo CD. Every case of every health_test.yaml is one test, in Argo CD's own
test format; the argocd-cm patch must carry the same scripts byte for byte.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

try:
    import lupa.lua51 as lupa_lua51
except ImportError as missing:
    # CI must not go green by skipping the health checks (tests/unit/test_ci_guards.py).
    if os.environ.get("CI") == "true":
        pytest.fail(f"lupa (Lua 5.1) is not installed; CI must provide it: {missing}", pytrace=False)
    pytest.skip(f"lupa (Lua 5.1) is not installed: {missing}", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
ARGOCD_DIR = REPO / "manifests" / "argocd"
HEALTH_DIR = ARGOCD_DIR / "health"
GROUP = "agentfleet.dev"
KINDS = ("Agent", "Connector", "StatePolicy")

# gitops-engine's HealthStatusCode values a script may return; anything else becomes Unknown.
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# Libraries Argo CD does not open for argocd-cm scripts (useOpenLibs defaults to false). It
# loads a reduced "safe" os; health checks have no use for time, so os is removed entirely.
UNAVAILABLE_GLOBALS = ("string", "math", "io", "os", "debug", "coroutine")


def kind_dir(kind: str) -> Path:
    return HEALTH_DIR / GROUP / kind


def load_cases() -> list[Any]:
    cases = []
    for kind in KINDS:
        spec = yaml.safe_load((kind_dir(kind) / "health_test.yaml").read_text(encoding="utf-8"))
        for case in spec["tests"]:
            cases.append(pytest.param(kind, case, id=f"{kind}:{Path(case['inputPath']).stem}"))
    return cases


def to_lua(lua: Any, value: Any) -> Any:
    """Convert YAML data to Lua values the way Argo CD's decodeValue converts JSON."""
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:  # JSON null decodes to nil: the key is simply absent
                table[str(key)] = to_lua(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        for index, item in enumerate(value, start=1):
            table[index] = to_lua(lua, item)
        return table
    if isinstance(value, dt.datetime | dt.date):
        # YAML parses unquoted timestamps; the API server sends RFC 3339 strings.
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)  # JSON numbers are float64 in Argo CD
    return value


def run_health(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    lua = lupa_lua51.LuaRuntime(unpack_returned_tuples=False)
    globals_ = lua.globals()
    for name in UNAVAILABLE_GLOBALS:
        globals_[name] = None
    globals_["obj"] = to_lua(lua, obj)
    script = (kind_dir(kind) / "health.lua").read_text(encoding="utf-8")
    result = lua.execute(script)
    assert lupa_lua51.lua_type(result) == "table", f"{kind} health.lua must return a table"
    return dict(result.items())


def test_lua_is_5_1_like_argo_cd() -> None:
    # The harness is only faithful if it really is Lua 5.1 (gopher-lua's dialect).
    assert lupa_lua51.LuaRuntime().lua_version == (5, 1)


@pytest.mark.parametrize(("kind", "case"), load_cases())
def test_health_case(kind: str, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((kind_dir(kind) / case["inputPath"]).read_text(encoding="utf-8"))
    assert obj["kind"] == kind, f"{case['inputPath']} is a {obj['kind']}, not a {kind}"
    assert obj["apiVersion"] == f"{GROUP}/v1alpha1"

    health = run_health(kind, obj)

    assert health.get("status") in ARGO_STATUSES
    assert set(health) == {"status", "message"}, f"unexpected keys {sorted(health)}"
    assert health == case["healthStatus"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_testdata_file_is_a_case(kind: str) -> None:
    spec = yaml.safe_load((kind_dir(kind) / "health_test.yaml").read_text(encoding="utf-8"))
    referenced = {Path(case["inputPath"]).name for case in spec["tests"]}
    on_disk = {path.name for path in (kind_dir(kind) / "testdata").glob("*.yaml")}
    assert referenced == on_disk, "every testdata file needs a case and every case a file"


@pytest.mark.parametrize("kind", KINDS)
def test_cases_cover_the_states_that_matter(kind: str) -> None:
    spec = yaml.safe_load((kind_dir(kind) / "health_test.yaml").read_text(encoding="utf-8"))
    statuses = {case["healthStatus"]["status"] for case in spec["tests"]}
    messages = {case["healthStatus"]["message"] for case in spec["tests"]}
    expected = {"Healthy", "Progressing", "Degraded"} | ({"Suspended"} if kind == "Agent" else set())
    assert expected <= statuses
    assert "Pending deletion" in messages
    assert any(m.startswith("Waiting for the operator to observe generation ") for m in messages)


def test_generation_message_prints_an_integer() -> None:
    # Numbers arrive as doubles; Lua 5.1 and gopher-lua both print 7.0 as "7". A script that
    # formatted it differently would show "generation 7.0" in the Argo CD UI.
    obj = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": "a", "namespace": "n", "generation": 7},
        "status": {"observedGeneration": 6},
    }
    assert run_health("Agent", obj)["message"] == "Waiting for the operator to observe generation 7"


@pytest.mark.parametrize("kind", KINDS)
def test_scripts_avoid_libraries_argo_cd_does_not_load(kind: str) -> None:
    # The harness removes these globals, but a branch no case reaches would still slip through.
    source = (kind_dir(kind) / "health.lua").read_text(encoding="utf-8")
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    for name in UNAVAILABLE_GLOBALS:
        assert f"{name}." not in code, f"{kind}/health.lua uses {name}.*"
    assert ":format(" not in code and ":gsub(" not in code, "string methods need the string library"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cm", ARGOCD_DIR / "gen_cm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_argocd_cm_patch_is_generated_from_the_lua_files() -> None:
    generator = load_generator()
    current = (ARGOCD_DIR / "argocd-cm-patch.yaml").read_text(encoding="utf-8")
    assert current == generator.render(), "run: python manifests/argocd/gen_cm.py"


def test_argocd_cm_patch_carries_each_script_verbatim() -> None:
    patch = yaml.safe_load((ARGOCD_DIR / "argocd-cm-patch.yaml").read_text(encoding="utf-8"))
    assert patch["kind"] == "ConfigMap"
    assert patch["metadata"]["name"] == "argocd-cm"
    expected = {
        f"resource.customizations.health.{GROUP}_{kind}": (kind_dir(kind) / "health.lua").read_text(encoding="utf-8")
        for kind in KINDS
    }
    assert patch["data"] == expected
