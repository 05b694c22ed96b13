"""The Connector kind: a link to an enterprise system whose credentials live in a Secret."""

from __future__ import annotations

from typing import Any, Literal

from agentfleet_contract.runtime_config import MAX_TOOL_CACHE_SECONDS
from pydantic import Field, field_validator, model_validator

from .base import (
    CONDITIONS_EXTRA,
    HTTP_URL,
    TOOL_NAME,
    ApiModel,
    CABundleReference,
    Condition,
    LocalObjectReference,
    cel,
    checked_cidrs,
    egress_cidrs,
    validations,
)

AuthType = Literal["none", "apiKey", "bearer", "basic", "oauth2ClientCredentials"]

# The Secret keys each auth type reads; the operator checks them, the runtime reads them as files.
SECRET_KEYS_BY_AUTH: dict[str, tuple[str, ...]] = {
    "none": (),
    "apiKey": ("apiKey",),
    "bearer": ("token",),
    "basic": ("username", "password"),
    "oauth2ClientCredentials": ("clientId", "clientSecret"),
}


class ConnectorAuth(ApiModel):
    """How the runtime authenticates to the system."""

    model_config = validations(
        cel(
            "self.type == 'none' || has(self.secretRef)",
            "spec.auth.secretRef is required unless spec.auth.type is none",
            ".secretRef",
        ),
        cel(
            "self.type != 'none' || !has(self.secretRef)",
            "spec.auth.secretRef must not be set when spec.auth.type is none",
            ".secretRef",
        ),
        cel(
            "!has(self.header) || self.type == 'apiKey'",
            "spec.auth.header may only be set when spec.auth.type is apiKey",
            ".header",
        ),
        cel(
            "(self.type == 'oauth2ClientCredentials') == has(self.tokenURL)",
            "spec.auth.tokenURL is required for oauth2ClientCredentials and allowed for it only",
            ".tokenURL",
        ),
        cel(
            "!has(self.scopes) || size(self.scopes) == 0 || self.type == 'oauth2ClientCredentials'",
            "spec.auth.scopes may only be set when spec.auth.type is oauth2ClientCredentials",
            ".scopes",
        ),
    )

    type: AuthType = Field(
        default="none",
        description="none | apiKey (key apiKey) | bearer (key token) | basic (keys username, password) | "
        "oauth2ClientCredentials (keys clientId, clientSecret).",
    )
    secret_ref: LocalObjectReference | None = Field(
        default=None,
        description="Secret holding the credentials, with the keys the auth type needs.",
    )
    header: str | None = Field(
        default=None,
        max_length=256,
        pattern=r"^[A-Za-z0-9-]+$",
        description="Header carrying the key for apiKey auth (default X-API-Key).",
    )
    token_url: str | None = Field(
        default=None,
        alias="tokenURL",
        max_length=2048,
        pattern=HTTP_URL,
        description="OAuth2 token endpoint for oauth2ClientCredentials.",
    )
    scopes: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="OAuth2 scopes requested.",
        json_schema_extra={"items": {"type": "string", "maxLength": 256}},
    )


class ConnectorTool(ApiModel):
    """One tool the agent may call on this system."""

    name: str = Field(min_length=1, max_length=63, pattern=TOOL_NAME, description="Tool name, [a-z][a-z0-9_]*, unique.")
    description: str = Field(default="", max_length=4096, description="What the tool does, shown to the model.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(default="GET", description="HTTP method.")
    path: str = Field(default="", max_length=2048, description="Path appended to the Connector's endpoint.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="JSON Schema (type object) of the tool's arguments; arguments are validated before a call.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    cache_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOOL_CACHE_SECONDS,
        description="GET tools of an http Connector only: a successful result is reused for this many seconds "
        "(1 to 86400) by calls with the same arguments, without calling the system. Kept per pod in memory, "
        "never in a shared store; counted in agent_tool_cache_requests_total. Absent: every call is made.",
    )


class RateLimit(ApiModel):
    requests_per_second: float = Field(gt=0, le=100000, description="Sustained calls per second per pod.")


# The runtime's own defaults (agentfleet_runtime/tools/breaker.py), which apply when circuitBreaker is absent.
DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_OPEN_SECONDS = 30


class CircuitBreaker(ApiModel):
    """When the runtime stops calling a failing system, per pod: after `failures` consecutive failed
    calls the circuit opens and calls fail at once (outcome circuit_open) for `openSeconds`; then one
    trial call decides whether it closes again."""

    failures: int = Field(
        default=DEFAULT_BREAKER_FAILURES, ge=1, le=100, description="Consecutive failed calls that open the circuit."
    )
    open_seconds: int = Field(
        default=DEFAULT_BREAKER_OPEN_SECONDS,
        ge=1,
        le=3600,
        description="How long the circuit stays open before one trial call.",
    )


class ConnectorSpec(ApiModel):
    """Desired state of a connector."""

    model_config = validations(
        cel(
            "self.type in ['mcp', 'agent'] || (has(self.tools) && size(self.tools) > 0)",
            "spec.tools must list at least one tool unless spec.type is mcp or agent",
            ".tools",
        ),
        cel(
            "self.type == 'agent' || has(self.endpoint)",
            "spec.endpoint is required unless spec.type is agent",
            ".endpoint",
        ),
        # An accepted field that does nothing is a defect: the operator calls the target's Service.
        cel(
            "self.type != 'agent' || !has(self.endpoint)",
            "spec.endpoint must not be set when spec.type is agent (the target Agent's Service is called)",
            ".endpoint",
        ),
        cel(
            "(self.type == 'agent') == has(self.agentRef)",
            "spec.agentRef is required when spec.type is agent and allowed for it only",
            ".agentRef",
        ),
        # The operator mounts the target's caller key; another credential would be ignored.
        cel(
            "self.type != 'agent' || !has(self.auth) || self.auth.type == 'none'",
            "spec.auth.type must be none when spec.type is agent (the operator supplies the target Agent's key)",
            ".auth.type",
        ),
        cel(
            "self.type != 'agent' || !has(self.tools) || size(self.tools) <= 1",
            "spec.tools of an agent Connector may hold at most one tool (it names the one tool the Agent is)",
            ".tools",
        ),
        # method and path have defaults the API server fills in, so only values other than those count.
        cel(
            "self.type != 'agent' || !has(self.tools) || self.tools.all(t, !has(t.parameters)"
            " && (!has(t.path) || t.path == '') && (!has(t.method) || t.method == 'GET'))",
            "spec.tools of an agent Connector may set only name and description (the tool takes one message)",
            ".tools",
        ),
        # Only a call without side effects may be answered from a cache; MCP servers' hints do not tell
        # read-only from idempotent (status.tools has one flag for both), so mcp tools are not cached.
        cel(
            "!has(self.tools) || self.tools.all(t, !has(t.cacheSeconds)"
            " || (self.type == 'http' && (!has(t.method) || t.method == 'GET')))",
            "spec.tools[].cacheSeconds is allowed only on GET tools of an http Connector "
            "(only a call without side effects may be answered from a cache)",
            ".tools",
        ),
        cel(
            "self.type != 'agent' || !has(self.egress) || size(self.egress) == 0",
            "spec.egress must not be set when spec.type is agent (the target Agent's pods are allowed)",
            ".egress",
        ),
        # An MCP server describes its own tools; spec.tools only picks which of them to keep.
        cel(
            "self.type != 'mcp' || !has(self.tools) || self.tools.all(t, !has(t.parameters)"
            " && (!has(t.path) || t.path == '') && (!has(t.method) || t.method == 'GET')"
            " && (!has(t.description) || t.description == ''))",
            "spec.tools of an mcp Connector may set only name (it keeps the server's tools of those names; "
            "the server gives their description and parameters)",
            ".tools",
        ),
    )

    type: Literal["http", "webhook", "mcp", "agent"] = Field(
        description="http | webhook | mcp | agent (another Agent of this namespace as one tool)."
    )
    endpoint: str | None = Field(
        default=None,
        max_length=2048,
        pattern=HTTP_URL,
        description="Base URL, http(s) only; required unless type is agent.",
    )
    agent_ref: LocalObjectReference | None = Field(
        default=None,
        description="agent: the Agent of this namespace the tool asks, with that Agent's caller key.",
    )
    auth: ConnectorAuth = Field(
        default_factory=ConnectorAuth,
        description="How to authenticate (none for type agent: the operator supplies the target's key).",
        json_schema_extra={"default": {"type": "none"}},
    )
    tools: list[ConnectorTool] = Field(
        default_factory=list,
        max_length=128,
        description="http/webhook: the tools the agent may call; mcp: filter of discovered tools; agent: at most "
        "one, overriding the tool's name (default ask_<agent>) and description.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    timeout_seconds: int = Field(default=10, ge=1, le=300, description="Per-call timeout.")
    retries: int = Field(default=2, ge=0, le=10, description="Retries of a failed call (idempotent methods).")
    rate_limit: RateLimit | None = Field(default=None, description="Client-side rate limit per pod.")
    circuit_breaker: CircuitBreaker | None = Field(
        default=None,
        description="Thresholds of the runtime's circuit breaker for this system (absent: 5 failures, 30 seconds).",
    )
    ca_bundle_secret_ref: CABundleReference | None = Field(
        default=None,
        description="Secret key with PEM CA certificates the system's certificate may chain to besides the "
        "public CAs (a private CA); also for the token URL. agent: the CA of the target Agent's TLS "
        "certificate. Part of the revision of every Agent using the Connector.",
    )
    egress: list[str] = egress_cidrs(
        "spec.egress",
        "Addresses (CIDRs) of the system where it is outside the cluster, e.g. [203.0.113.0/24]. Each Agent "
        "using this Connector gets a NetworkPolicy allowing egress only to what it calls: a host that is a "
        "Service of the cluster is allowed by the Service's selector, but a NetworkPolicy cannot name other "
        "hosts, so the endpoint's and tokenURL's outside hosts are reachable at these addresses only.",
    )

    @field_validator("egress")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return checked_cidrs("spec.egress", value)

    @model_validator(mode="after")
    def _agent_fields(self) -> ConnectorSpec:
        """The CRD's rules again, for objects stored before them (the operator parses every body)."""
        if self.type == "agent":
            if self.agent_ref is None:
                raise ValueError("spec.agentRef is required when spec.type is agent")
            if self.endpoint is not None:
                raise ValueError("spec.endpoint must not be set when spec.type is agent")
            if self.auth.type != "none":
                raise ValueError("spec.auth.type must be none when spec.type is agent")
            if len(self.tools) > 1:
                raise ValueError("spec.tools of an agent Connector may hold at most one tool")
            if self.egress:
                raise ValueError("spec.egress must not be set when spec.type is agent")
        elif self.endpoint is None:
            raise ValueError("spec.endpoint is required unless spec.type is agent")
        cached_writes = [
            t.name for t in self.tools if t.cache_seconds is not None and (self.type != "http" or t.method != "GET")
        ]
        if cached_writes:
            raise ValueError(
                "spec.tools[].cacheSeconds is allowed only on GET tools of an http Connector "
                f"({', '.join(cached_writes)})"
            )
        return self


class DiscoveredTool(ApiModel):
    """One tool an MCP server offers, as its last successful tools/list described it."""

    name: str = Field(max_length=128, description="The server's name for the tool.")
    description: str = Field(default="", max_length=4096, description="What the tool does, shown to the model.")
    schema_hash: str = Field(
        default="", description="Hash of the tool's input schema; it changes when the schema does."
    )
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="The tool's input schema (JSON Schema), offered to the model as the tool's parameters.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    idempotent: bool = Field(
        default=False, description="The server marks it read-only or idempotent: a failed call may be repeated."
    )


class ConnectorStatus(ApiModel):
    observed_generation: int | None = Field(default=None, description="The generation this status describes.")
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, SecretResolved, EgressReady; mcp: ToolsDiscovered.",
        json_schema_extra=CONDITIONS_EXTRA,
    )
    secret_hash: str = Field(default="", description="Hash of the referenced Secret's data; never the data.")
    used_by: int = Field(default=0, ge=0, description="Agents referencing this Connector.")
    tools: list[DiscoveredTool] | None = Field(
        default=None,
        max_length=512,
        description="mcp: the tools the server offers (filtered by spec.tools), from the last discovery that "
        "succeeded; kept while the server is unreachable.",
    )
    tool_count: int | None = Field(default=None, ge=0, description="mcp: the number of entries in tools.")


class Connector(ApiModel):
    """A link to an enterprise system (CRM, ERP, HTTP API, webhook, MCP server)."""

    spec: ConnectorSpec
    status: ConnectorStatus | None = None
