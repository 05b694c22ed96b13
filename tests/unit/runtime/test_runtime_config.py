from __future__ import annotations

import json
from pathlib import Path

import pytest
from agentfleet_runtime.config import ConfigError, RuntimeConfig, load_config

MINIMAL = {"agent": {"name": "bot"}, "model": {"provider": "rules", "name": "rules"}}


def write(tmp_path: Path, data: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_defaults_of_a_minimal_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.agent.namespace == "default" and config.agent.revision == "dev"
    assert config.state is None and config.access.api_keys_dir is None
    assert config.server.port == 8080 and config.server.max_request_bytes == 1_048_576
    assert config.model.temperature == 0.2 and config.model.max_tool_steps == 5


def test_camel_case_round_trip_and_yaml(tmp_path: Path) -> None:
    data = {
        **MINIMAL,
        "state": {"store": "redis", "redisURL": "redis://r:6379/0", "ttlSeconds": 5, "redaction": ["email"]},
        "connectors": [
            {
                "name": "crm",
                "type": "http",
                "endpoint": "https://crm",
                "auth": {
                    "type": "oauth2ClientCredentials",
                    "secretDir": "/s",
                    "tokenURL": "https://crm/token",
                    "scopes": ["a"],
                },
                "rateLimit": {"requestsPerSecond": 3},
            }
        ],
    }
    config = RuntimeConfig.model_validate(data)
    dumped = config.model_dump(by_alias=True, exclude_none=True)
    assert dumped["state"]["redisURL"] == "redis://r:6379/0"
    assert dumped["connectors"][0]["auth"]["tokenURL"] == "https://crm/token"
    assert RuntimeConfig.model_validate(dumped) == config
    yaml_file = write(tmp_path, "agent: {name: bot}\nmodel: {provider: rules, name: r}\n", "config.yaml")
    assert load_config(yaml_file).agent.name == "bot"
    assert "properties" in RuntimeConfig.model_json_schema(by_alias=True)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"model": {"provider": "rules", "name": "r", "temperature": 3}}, "model.temperature"),
        ({"model": {"provider": "gpt", "name": "r"}}, "model.provider"),
        ({"model": {"provider": "openai-compatible", "name": "r"}}, "endpoint is required"),
        ({"model": {"provider": "rules", "name": "r", "rules": [{"pattern": "("}]}}, "model.rules.0.pattern"),
        ({"state": {"store": "redis"}}, "redisURL is required"),
        ({"server": {"port": 0}}, "server.port"),
        ({"unknownField": 1}, "unknownField"),
        ({"connectors": [{"name": "crm", "type": "http", "endpoint": "ftp://x"}]}, "connectors.0.endpoint"),
        (
            {"connectors": [{"name": "crm", "type": "http", "endpoint": "http://x", "tools": [{"name": "Bad-Name"}]}]},
            "connectors.0.tools.0.name",
        ),
        ({"cache": {"ttlSeconds": 60}}, "cache needs state"),
        ({"cache": {"ttlSeconds": 0}, "state": {"store": "memory"}}, "cache.ttlSeconds"),
        ({"cache": {"ttlSeconds": 604_801}, "state": {"store": "memory"}}, "cache.ttlSeconds"),
        (
            {
                "connectors": [
                    {
                        "name": "crm",
                        "type": "http",
                        "endpoint": "http://x",
                        "tools": [{"name": "open_ticket", "method": "POST", "cacheSeconds": 5}],
                    }
                ]
            },
            "cacheSeconds is only allowed on GET tools of an http connector",
        ),
        (
            {
                "connectors": [
                    {
                        "name": "orders",
                        "type": "mcp",
                        "endpoint": "http://x",
                        "tools": [{"name": "get", "cacheSeconds": 5}],
                    }
                ]
            },
            "cacheSeconds is only allowed on GET tools of an http connector",
        ),
    ],
)
def test_errors_name_the_bad_field(tmp_path: Path, patch: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, {**MINIMAL, **patch}))
    assert field in str(info.value)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("text", ["{not json", "[]", ""])
def test_unparseable_files_are_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, text))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.json")


def test_config_module_stays_light() -> None:
    # The operator imports it; it must not drag in the runtime's server or client libraries.
    import subprocess
    import sys

    code = (
        "import sys, agentfleet_runtime.config; "
        "heavy = {'fastapi', 'starlette', 'httpx', 'redis', 'cryptography', 'uvicorn'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
