"""Where the tests find the real programs they run (kubectl, prometheus, promtool, redis-server...).

The project's own builds come first: `make deps` links Prometheus and promtool compiled from their Go
module into .venv/bin (hack/build-prometheus.sh), and a machine's older packaged copy must not stand
in for them. Then PATH, then /usr/bin (a shell that dropped it from PATH). Under CI=true a missing
program fails the test; CI must not go green by skipping (tests/unit/test_ci_guards.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_BIN = ROOT / ".venv" / "bin"


def tool(name: str, install_hint: str = "") -> str:
    own = PROJECT_BIN / name
    if own.exists():
        return str(own)
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        reason = f"{name} is not installed" + (f" ({install_hint})" if install_hint else "")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must provide it", pytrace=False)
        pytest.skip(reason)
    return found
