"""The runtime's configuration file: the contract between the operator and every agent pod.

The operator builds a RuntimeConfig from a resolved Agent and writes it, dumped by alias, into the
revision's ConfigMap; the runtime reads that file back into the same models. The operator hashes
the dumped document into the Agent's revision, so a change here that changes what the operator
writes for the same Agent rolls every running Agent (tests/unit/test_runtime_config_document.py).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "AccessConfig",
    "AgentIdentity",
    "CacheConfig",
    "CircuitBreaker",
    "ConnectorAuth",
    "ConnectorConfig",
    "ModelConfig",
    "RateLimit",
    "Rule",
    "RuntimeConfig",
    "ServerConfig",
    "ServerTLS",
    "StateConfig",
    "ToolConfig",
    "checked_rule_pattern",
]

_NAME = r"^[a-z][a-z0-9_]*$"
# Upper bounds of the two caches, the same in the Agent's and Connector's API (the operator imports them).
MAX_ANSWER_CACHE_SECONDS = 604_800  # a week
MAX_TOOL_CACHE_SECONDS = 86_400  # a day
# Connector names are Kubernetes object names (DNS-1123 subdomains).
_K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def checked_rule_pattern(value: str) -> str:
    """A rule's pattern as the runtime will compile it, or ValueError saying why it cannot be.

    The Agent's API model checks it with this too: the CRD cannot (CEL has no Python regular
    expressions), and both sides must agree on what compiles."""
    try:
        re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class AgentIdentity(_Model):
    name: str = Field(min_length=1)
    namespace: str = Field(default="default", min_length=1)
    revision: str = Field(default="dev", min_length=1)


class Rule(_Model):
    """One rule of the built-in `rules` reasoner, tried in order; the first match wins."""

    pattern: str = Field(description="Regular expression, matched case-insensitively with re.search.")
    tool: str | None = Field(default=None, description="Tool to call when the pattern matches.")
    arguments: dict[str, str] = Field(
        default_factory=dict,
        description="Tool arguments as str.format templates filled from the match's named and numbered groups.",
    )
    reply: str | None = Field(
        default=None, description="Reply template; may reference {tool_result} and the match's groups."
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return checked_rule_pattern(value)


class ModelConfig(_Model):
    provider: Literal["openai-compatible", "rules"]
    name: str = Field(min_length=1)
    endpoint: str | None = Field(default=None, description="Base URL; /chat/completions is appended.")
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    api_key_file: str | None = None
    timeout_seconds: float = Field(default=30, gt=0, description="Per attempt of one model call.")
    # int | float: the operator writes whole seconds, and 10 must stay 10 in the document.
    deadline_seconds: int | float | None = Field(
        default=None,
        gt=0,
        description="The whole budget of one request's model calls, retries included (504 after it); "
        "absent: per-attempt timeouts only. The Agent's spec.model.timeoutSeconds; written only when set.",
    )
    max_retries: int = Field(default=3, ge=0, le=10)
    max_tool_steps: int = Field(default=5, ge=0, le=50)
    rules: list[Rule] = Field(default_factory=list)
    ca_file: str | None = Field(
        default=None,
        min_length=1,
        description="PEM file of CA certificates trusted for the endpoint besides the public ones (a private CA).",
    )

    @model_validator(mode="after")
    def _endpoint_for_llm(self) -> ModelConfig:
        if self.provider == "openai-compatible" and not self.endpoint:
            raise ValueError("endpoint is required when provider is openai-compatible")
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ValueError("endpoint must be an http(s) URL")
        return self


class ConnectorAuth(_Model):
    type: Literal["none", "apiKey", "bearer", "basic", "oauth2ClientCredentials"] = "none"
    secret_dir: str | None = Field(default=None, description="Directory holding the Secret's keys as files.")
    token_file: str | None = Field(
        default=None, description="bearer: the file holding the token, when it is not <secretDir>/token."
    )
    header: str = Field(default="X-API-Key", min_length=1)
    token_url: str | None = Field(default=None, alias="tokenURL")
    scopes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ConnectorAuth:
        if self.type != "none" and not self.secret_dir:
            raise ValueError(f"secretDir is required for auth type {self.type}")
        if self.type == "oauth2ClientCredentials" and not self.token_url:
            raise ValueError("tokenURL is required for auth type oauth2ClientCredentials")
        return self


class ToolConfig(_Model):
    name: str = Field(pattern=_NAME, description="The name the model sees.")
    remote_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="mcp: the server's own name for the tool, when it is not a valid name here (getOrder, "
        "orders.get); tools/call uses it.",
    )
    description: str = ""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    idempotent: bool | None = Field(
        default=None,
        description="mcp: the server declares the tool read-only or idempotent, so a failed call may be "
        "repeated; absent for http tools, whose method decides.",
    )
    cache_seconds: int | None = Field(
        default=None,
        gt=0,
        le=MAX_TOOL_CACHE_SECONDS,
        description="http GET tools only: a successful result is reused for this many seconds by calls "
        "with the same arguments (per pod, in memory). Absent: every call reaches the system.",
    )


class RateLimit(_Model):
    requests_per_second: float = Field(gt=0)


class CircuitBreaker(_Model):
    """When the runtime stops calling a failing system: after `failures` consecutive failures, for
    `openSeconds`, then one trial call. Absent: the runtime's defaults (5 failures, 30 s)."""

    failures: int = Field(ge=1)
    # int | float for the reason timeout_seconds is: whole seconds must stay 30, not 30.0.
    open_seconds: int | float = Field(gt=0)


class ConnectorConfig(_Model):
    name: str = Field(pattern=_K8S_NAME)
    type: Literal["http", "webhook", "mcp", "agent"]
    endpoint: str = Field(description="Base URL; agent: the target Agent's Service.")
    agent: str | None = Field(default=None, description="agent: the name of the Agent this connector calls.")
    auth: ConnectorAuth = Field(default_factory=ConnectorAuth)
    tools: list[ToolConfig] = Field(default_factory=list)
    # int | float, not float: the operator's API takes whole seconds, and a float field would write
    # them as 10.0 instead of 10, which changes the document and with it every Agent's revision.
    timeout_seconds: int | float = Field(default=10, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    rate_limit: RateLimit | None = None
    circuit_breaker: CircuitBreaker | None = None
    ca_file: str | None = Field(
        default=None,
        min_length=1,
        description="PEM file of CA certificates trusted for the endpoint (and token URL) besides the public ones.",
    )

    @field_validator("endpoint")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("endpoint must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _unique_tools(self) -> ConnectorConfig:
        names = [tool.name for tool in self.tools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate tool names: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _cache_only_reads(self) -> ConnectorConfig:
        # Only a call without side effects may be answered from a cache: an http GET.
        for tool in self.tools:
            if tool.cache_seconds is not None and (self.type != "http" or tool.method != "GET"):
                raise ValueError(f"tool {tool.name}: cacheSeconds is only allowed on GET tools of an http connector")
        return self


class StateConfig(_Model):
    store: Literal["redis", "memory"] = "memory"
    redis_url: str | None = Field(default=None, alias="redisURL")
    redis_password_file: str | None = None
    ttl_seconds: int = Field(default=3600, gt=0)
    max_turns: int = Field(default=50, gt=0)
    encryption_key_file: str | None = None
    session_key_file: str | None = Field(
        default=None, description="Key for hashing session ids into store key names (HMAC-SHA256)."
    )
    redaction: list[Literal["email", "phone", "creditCard", "iban"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _redis_needs_url(self) -> StateConfig:
        if self.store == "redis" and not self.redis_url:
            raise ValueError("redisURL is required when store is redis")
        return self


class CacheConfig(_Model):
    """The Agent's exact-match answer cache (spec.cache), kept in the state store (`state`)."""

    ttl_seconds: int = Field(
        gt=0,
        le=MAX_ANSWER_CACHE_SECONDS,
        description="How long a cached answer is served, from when it was stored (no sliding expiry).",
    )


class AccessConfig(_Model):
    api_keys_dir: str | None = Field(
        default=None, description="Directory whose regular files each hold one accepted caller key."
    )


class ServerTLS(_Model):
    """HTTPS for the API: the certificate chain and its private key as PEM files (a kubernetes.io/tls
    Secret mounted as a volume), never their contents. The runtime looks at the files every
    `reloadIntervalSeconds` and serves a replaced pair to new connections without a restart."""

    cert_file: str = Field(min_length=1, description="PEM certificate chain, the server's own certificate first.")
    key_file: str = Field(min_length=1, description="PEM private key of that certificate.")
    reload_interval_seconds: float = Field(default=10, gt=0, description="How often the files are checked.")


class ServerConfig(_Model):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    max_request_bytes: int = Field(default=1_048_576, gt=0)
    max_message_chars: int = Field(default=32_000, gt=0)
    graceful_shutdown_seconds: float = Field(default=20, ge=0)
    tls: ServerTLS | None = Field(default=None, description="Serve HTTPS; absent: plain HTTP.")


class RuntimeConfig(_Model):
    agent: AgentIdentity
    model: ModelConfig
    system_prompt: str = ""
    connectors: list[ConnectorConfig] = Field(default_factory=list)
    state: StateConfig | None = None
    cache: CacheConfig | None = Field(
        default=None,
        description="Absent: no answer is cached. Needs `state`: answers are kept in its store.",
    )
    access: AccessConfig = Field(default_factory=AccessConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)

    @model_validator(mode="after")
    def _unique_connectors(self) -> RuntimeConfig:
        names = [connector.name for connector in self.connectors]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate connector names: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _cache_needs_a_store(self) -> RuntimeConfig:
        if self.cache is not None and self.state is None:
            raise ValueError("cache needs state: cached answers are kept in the state store")
        return self
