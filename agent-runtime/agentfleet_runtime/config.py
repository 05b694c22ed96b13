"""Reading the runtime's configuration file at start.

The file's models are the contract shared with the operator (agentfleet_contract.runtime_config);
they are re-exported here so the runtime's modules keep one place to import their config from.
Reading, parsing and explaining a bad file is the runtime's own business, so that stays here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentfleet_contract import runtime_config as _contract

# The models, re-exported whole (the contract's __all__), so the runtime's modules and its tests
# keep one place to import their config from and a model added there needs no edit here.
from agentfleet_contract.runtime_config import *  # noqa: F403
from agentfleet_contract.runtime_config import RuntimeConfig
from pydantic import ValidationError

__all__ = [*_contract.__all__, "ConfigError", "load_config"]


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the bad field."""


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def _parse(text: str, path: Path) -> Any:
    if path.suffix.lower() in (".yaml", ".yml") or not text.lstrip().startswith(("{", "[")):
        try:
            import yaml
        except ImportError:  # pragma: no cover - pyyaml is a project dependency
            raise ConfigError(f"{path}: YAML configuration needs pyyaml installed") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None


def load_config(path: str | Path) -> RuntimeConfig:
    """Read and validate a runtime configuration file (JSON, or YAML when pyyaml is installed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    data = _parse(text, path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be an object")
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None
