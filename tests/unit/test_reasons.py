"""Every condition and Event reason the operator can emit is a named constant of api/reasons.py,
and every one of them is explained in docs/operations.md, where users look them up."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from agentfleet_operator.api import reasons
from agentfleet_operator.builders.pod_health import CRASH_LOOP, FAILED_WAITING, OOM_KILLED

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "agentfleet_operator"
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
# Passed through from the kubelet (builders/pod_health.py) as the Agent's Ready reason.
KUBELET_REASONS = FAILED_WAITING | {OOM_KILLED, CRASH_LOOP}

# (callable name, index of the reason among its positional arguments)
REASON_ARGUMENT = {
    "Cond": 2,
    "problem": 1,
    "Problem": 1,
    "ProbeResult": 1,
    "PodFailure": 0,
    "_start": 1,
    "_abort": 0,
    "ctx.event": 2,
}


def _documented(reason: str) -> bool:
    """Named in backticks, or in a heading of the troubleshooting section."""
    return f"`{reason}`" in OPERATIONS or re.search(rf"^###.*\b{reason}\b", OPERATIONS, re.M) is not None


@pytest.mark.parametrize("reason", sorted(reasons.ALL | KUBELET_REASONS))
def test_every_reason_is_documented(reason: str) -> None:
    assert _documented(reason), f"reason {reason} is not explained in docs/operations.md"


def _literal_reasons(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = getattr(func, "id", "")
            if isinstance(func, ast.Attribute):  # ctx.event(...), but not kopf.on.event(...)
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                name = f"{owner}.{func.attr}" if owner == "ctx" else func.attr
            index = REASON_ARGUMENT.get(name)
            if index is not None and len(node.args) > index:
                arg = node.args[index]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((node.lineno, arg.value))
        # Events are (type, reason, message) tuples.
        if isinstance(node, ast.Tuple) and len(node.elts) == 3:
            first, second = node.elts[0], node.elts[1]
            if (
                isinstance(first, ast.Constant)
                and first.value in ("Normal", "Warning")
                and isinstance(second, ast.Constant)
                and isinstance(second.value, str)
            ):
                found.append((node.lineno, second.value))
    return found


def test_the_code_names_reasons_only_through_the_constants() -> None:
    literals = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if "cli" not in path.parts
        for line, value in _literal_reasons(ast.parse(path.read_text()))
    ]
    assert not literals, "use a constant of api/reasons.py (and document it):\n" + "\n".join(literals)


def test_the_constants_are_distinct() -> None:
    values = [v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)]
    assert len(values) == len(set(values)) == len(reasons.ALL)
