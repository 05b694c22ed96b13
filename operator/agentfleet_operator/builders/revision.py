"""Content hashes: a revision is the hash of everything a pod runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

REVISION_LENGTH = 10


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def secret_hash(data: Mapping[str, str] | None) -> str:
    """Hash of a Secret's data (base64 values as stored); reveals nothing of the values."""
    return _digest(dict(data or {}))[:16]


def revision_hash(image: str, runtime_config: Mapping[str, Any], secret_hashes: Mapping[str, str]) -> str:
    """The runtime config already holds the model block, the resolved prompt text and the
    connector specs; the image and the hashes of every Secret the pods read complete it, so a
    prompt-only change or a rotated credential is a new revision too."""
    return _digest({"image": image, "config": runtime_config, "secrets": dict(secret_hashes)})[:REVISION_LENGTH]
