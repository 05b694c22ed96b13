"""Read Secrets that Kubernetes mounts as directories, and notice when they rotate.

The kubelet updates a mounted Secret by swapping the `..data` symlink, which changes the
directory; files edited in place (local development) change their own stat. A signature
over both is cheap, so it is recomputed at most once per `min_interval` seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def _signature(directory: Path) -> tuple[object, ...]:
    parts: list[object] = []
    try:
        parts.append(directory.stat().st_mtime_ns)
        data = directory / "..data"
        if data.exists():
            parts.append(os.path.realpath(data))
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat()  # follows the kubelet's symlinks
                except OSError:
                    continue
                parts.append((entry.name, st.st_mtime_ns, st.st_size, st.st_ino))
    except OSError:
        return ("missing",)
    return tuple(parts)


def read_secret_dir(directory: Path) -> dict[str, str]:
    """Every regular, non-hidden file of the directory as name -> stripped text."""
    values: dict[str, str] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return values
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if not entry.is_file():  # follows symlinks, so kubelet's key -> ..data/key links count
                continue
            values[entry.name] = Path(entry.path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
    return values


class SecretDir:
    """A mounted Secret directory whose values are re-read when it changes."""

    def __init__(
        self, directory: str | Path, *, min_interval: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.directory = Path(directory)
        self._min_interval = min_interval
        self._clock = clock
        self._checked_at = -float("inf")
        self._signature: tuple[object, ...] | None = None
        self._values: dict[str, str] = {}
        self.generation = 0

    def values(self) -> dict[str, str]:
        now = self._clock()
        if now - self._checked_at >= self._min_interval:
            self._checked_at = now
            signature = _signature(self.directory)
            if signature != self._signature:
                self._signature = signature
                self._values = read_secret_dir(self.directory)
                self.generation += 1
        return self._values

    def get(self, key: str) -> str | None:
        value = self.values().get(key)
        return value or None


class SecretFile:
    """One file holding a secret (e.g. an LLM API key), re-read when it changes."""

    def __init__(self, path: str | Path, *, min_interval: float = 1.0) -> None:
        self.path = Path(path)
        self._dir = SecretDir(self.path.parent, min_interval=min_interval)

    def value(self) -> str | None:
        return self._dir.get(self.path.name)
