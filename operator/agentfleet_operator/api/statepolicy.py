"""The StatePolicy kind: how conversations are kept."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import (
    CONDITIONS_EXTRA,
    ApiModel,
    Condition,
    SecretKeyReference,
    cel,
    checked_cidrs,
    egress_cidrs,
    validations,
)

RedactionPattern = Literal["email", "phone", "creditCard", "iban"]


class RedisStore(ApiModel):
    model_config = validations(
        cel(
            "has(self.url) != (has(self.provision) && self.provision)",
            "spec.store.redis: set exactly one of url or provision: true",
            ".url",
        ),
        cel(
            "!has(self.egress) || size(self.egress) == 0 || has(self.url)",
            "spec.store.redis.egress may only be set with spec.store.redis.url (a provisioned Redis is in the cluster)",
            ".egress",
        ),
    )

    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^rediss?://[^\s]+$",
        description="redis:// or rediss:// URL of an existing Redis.",
    )
    password_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key with the Redis password (generated when provisioned).",
    )
    provision: bool = Field(
        default=False,
        description="true: the operator runs a Redis StatefulSet + Service with persistence.",
    )
    storage_size: str = Field(
        default="1Gi",
        max_length=32,
        pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)$",
        description="Volume size of a provisioned Redis.",
    )
    egress: list[str] = egress_cidrs(
        "spec.store.redis.egress",
        "Addresses (CIDRs) of the Redis at url where it is outside the cluster, e.g. [203.0.113.10/32]. The "
        "Agents' NetworkPolicies allow egress only to what their pods call; a NetworkPolicy cannot name hosts, "
        "so a url host that is not a Service of the cluster is reachable at these addresses only.",
    )

    @field_validator("egress")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return checked_cidrs("spec.store.redis.egress", value)


class StoreSpec(ApiModel):
    model_config = validations(
        cel(
            "self.type != 'redis' || has(self.redis)",
            "spec.store.redis is required when spec.store.type is redis",
            ".redis",
        ),
        cel(
            "self.type != 'memory' || !has(self.redis)",
            "spec.store.redis must not be set when spec.store.type is memory",
            ".redis",
        ),
    )

    type: Literal["redis", "memory"] = Field(
        description="redis: shared, survives restarts; memory: per pod, lost on restart (development only).",
    )
    redis: RedisStore | None = Field(default=None, description="Redis settings for type redis.")


class SessionSpec(ApiModel):
    ttl_seconds: int = Field(default=3600, ge=1, le=31_536_000, description="Sliding expiry of idle sessions.")
    max_turns: int = Field(default=50, ge=1, le=10000, description="Older turns beyond this are dropped.")


class EncryptionSpec(ApiModel):
    key_secret_ref: SecretKeyReference = Field(
        description="Secret key whose bytes derive the encryption key; present = session data encrypted at rest.",
    )


class RedactionSpec(ApiModel):
    patterns: list[RedactionPattern] = Field(
        default_factory=list,
        max_length=4,
        description="PII replaced before it is stored or logged: email, phone, creditCard, iban.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class StatePolicySpec(ApiModel):
    """Desired state of a state policy."""

    store: StoreSpec = Field(description="Where sessions live.")
    session: SessionSpec = Field(
        default_factory=SessionSpec,
        description="Expiry and history length.",
        json_schema_extra={"default": {}},
    )
    encryption: EncryptionSpec | None = Field(default=None, description="Encryption at rest of session data.")
    redaction: RedactionSpec | None = Field(default=None, description="PII redaction.")


class StatePolicyStatus(ApiModel):
    observed_generation: int | None = Field(default=None, description="The generation this status describes.")
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, StoreReachable.",
        json_schema_extra=CONDITIONS_EXTRA,
    )
    used_by: int = Field(default=0, ge=0, description="Agents referencing this StatePolicy.")
    store_url: str = Field(default="", description="The Redis URL agents use (no password).")


class StatePolicy(ApiModel):
    """How conversations are kept: Redis or memory, TTL, history length, encryption, PII redaction."""

    spec: StatePolicySpec
    status: StatePolicyStatus | None = None
