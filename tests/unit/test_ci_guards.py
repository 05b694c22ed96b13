"""Under CI=true a missing tool is a failure, never a skip: CI must not go green by skipping the checks.

The integration tier's guards (control plane, redis-server, prometheus) live in its fixtures; these two
unit files looked their tools up at import or in a helper and used to skip quietly. Each case runs the
files in a child pytest with one tool hidden by a plugin (shutil.which and the /usr/bin fallback answer
"absent", or `lupa.lua51` cannot be imported) and reads the outcomes from its JUnit XML.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUARDED = ("tests/unit/test_manifests_render.py", "tests/unit/test_argocd_health.py")
HIDEABLE = ("kubectl", "promtool", "lupa")

HIDE_TOOL_PLUGIN = """
import os
import pathlib
import shutil
import sys

HIDDEN = os.environ["HIDE_TOOL"]
if HIDDEN == "lupa":
    sys.modules["lupa.lua51"] = None  # makes `import lupa.lua51` raise ImportError, as if not installed
else:
    _which = shutil.which
    _exists = pathlib.Path.exists
    shutil.which = lambda name, *a, **k: None if name == HIDDEN else _which(name, *a, **k)
    pathlib.Path.exists = lambda self, *a, **k: False if self.name == HIDDEN else _exists(self, *a, **k)
"""


def run_with_tool_hidden(tmp_path: Path, hidden: str, ci: bool) -> dict[str, list[str]]:
    """Outcome → one line (message and text) per failed, errored or skipped case of the guarded files."""
    (tmp_path / "hide_tool.py").write_text(HIDE_TOOL_PLUGIN)
    report = tmp_path / "report.xml"
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(PYTHONPATH=str(tmp_path), AGENTFLEET_NO_REPORT="1", HIDE_TOOL=hidden)
    if ci:
        env["CI"] = "true"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "hide_tool",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report}",
            *GUARDED,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outcomes: dict[str, list[str]] = {"failure": [], "error": [], "skipped": []}
    for case in ET.parse(report).getroot().iter("testcase"):
        for child in case:
            if child.tag in outcomes:
                outcomes[child.tag].append(f"{child.get('message', '')} {child.text or ''}")
    return outcomes


@pytest.mark.parametrize("hidden", HIDEABLE)
def test_a_missing_tool_fails_under_ci(tmp_path: Path, hidden: str) -> None:
    outcomes = run_with_tool_hidden(tmp_path, hidden, ci=True)
    assert outcomes["skipped"] == [], f"skipped under CI=true: {outcomes['skipped']}"
    messages = outcomes["failure"] + outcomes["error"]
    assert messages and all(hidden in message for message in messages), messages


@pytest.mark.parametrize("hidden", HIDEABLE)
def test_a_missing_tool_skips_outside_ci(tmp_path: Path, hidden: str) -> None:
    # A developer without promtool still gets a green unit tier, with the reason in the skip.
    outcomes = run_with_tool_hidden(tmp_path, hidden, ci=False)
    assert outcomes["failure"] == [] and outcomes["error"] == [], outcomes
    assert outcomes["skipped"] and all(hidden in message for message in outcomes["skipped"]), outcomes


@pytest.mark.parametrize("path", GUARDED)
def test_guarded_files_exist(path: str) -> None:
    # The child runs would pass vacuously on a renamed file (pytest reports "file not found" as no cases).
    assert (REPO / path).is_file()
