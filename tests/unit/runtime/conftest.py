"""Unit tests of the runtime: pure logic, fake clocks, no network beyond loopback fakes."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # `import tests.fakes` without relying on the pytest pythonpath setting
    sys.path.insert(0, str(ROOT))
