"""Shared building blocks of the three kinds' models.

The pydantic models are the single source of truth of the API: the CRD schemas (with their
descriptions, defaults, bounds and CEL rules) are generated from them, and the operator parses
every object it reads through them.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .identity import API_VERSION as API_VERSION
from .identity import GROUP as GROUP
from .identity import VERSION as VERSION

# Names that end up inside other objects' names or in label values must stay short and DNS-safe.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
HTTP_URL = r"^https?://[^\s/$.?#][^\s]*$"
TOOL_NAME = r"^[a-z][a-z0-9_]*$"


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry; the message always names the offending field."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored because the API
    server's structural schema already prunes them and the operator must never crash on input."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


ResourceName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


class LocalObjectReference(ApiModel):
    """A reference to an object of a known kind in the same namespace."""

    name: ResourceName = Field(description="Name of the object in the same namespace.")


class SecretKeyReference(ApiModel):
    """One key of a Secret in the same namespace."""

    name: ResourceName = Field(description="Name of the Secret in the same namespace.")
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY, description="Key inside the Secret's data.")


class CABundleReference(ApiModel):
    """A Secret key holding PEM CA certificates (a private CA), trusted besides the public CAs."""

    name: ResourceName = Field(description="Name of the Secret in the same namespace.")
    key: str = Field(
        default="ca.crt",
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY,
        description="Key holding the PEM bundle (default ca.crt, as cert-manager and trust-manager write it).",
    )


class ConfigMapKeyReference(ApiModel):
    """One key of a ConfigMap in the same namespace."""

    name: ResourceName = Field(description="Name of the ConfigMap in the same namespace.")
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY, description="Key inside the ConfigMap's data.")


class Condition(ApiModel):
    """The standard metav1.Condition shape."""

    type: str = Field(max_length=316, description="Type of condition in CamelCase, e.g. Ready.")
    status: str = Field(description="True, False or Unknown.", json_schema_extra={"enum": ["True", "False", "Unknown"]})
    reason: str = Field(default="", max_length=1024, description="One CamelCase word saying why.")
    message: str = Field(default="", max_length=32768, description="Human readable details.")
    last_transition_time: str | None = Field(
        default=None, description="When the status last flipped (RFC 3339).", json_schema_extra={"format": "date-time"}
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was computed from."
    )


CONDITIONS_EXTRA: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


def conditions_field() -> Any:
    return Field(
        default_factory=list,
        max_length=16,
        description="Observations of the object's state, one per type (metav1.Condition).",
        json_schema_extra=CONDITIONS_EXTRA,
    )


def validations(*rules: dict[str, str]) -> ConfigDict:
    """A model config carrying CEL rules into the generated schema of that model."""
    return ApiModel.model_config | ConfigDict(json_schema_extra={"x-kubernetes-validations": list(rules)})


# An IPv6 CIDR is at most 39 characters of address, a slash and 3 digits.
CIDR_MAX_LENGTH = 43
MAX_EGRESS_CIDRS = 64
CIDR_EXAMPLE = "such as 203.0.113.0/24 or 2001:db8::/48 (one address: /32 or /128)"


def egress_cidrs(path: str, description: str) -> Any:
    """A list of CIDRs for the Agents' NetworkPolicy egress, each checked at admission (CEL isCIDR,
    Kubernetes 1.31+), the refusal naming the field."""
    return Field(
        default_factory=list,
        max_length=MAX_EGRESS_CIDRS,
        description=description,
        json_schema_extra={
            "x-kubernetes-list-type": "set",
            "items": {
                "type": "string",
                "maxLength": CIDR_MAX_LENGTH,
                "x-kubernetes-validations": [cel("isCIDR(self)", f"{path}: each entry must be a CIDR {CIDR_EXAMPLE}")],
            },
        },
    )


def checked_cidrs(path: str, values: list[str]) -> list[str]:
    """The CRD's isCIDR again, for objects stored before it: an address with a prefix length, no
    IPv4-mapped IPv6 address (the rules of Kubernetes' CEL CIDR library)."""
    for value in values:
        try:
            if "/" not in value or "%" in value:
                raise ValueError
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{path}: {value!r} is not a CIDR {CIDR_EXAMPLE}") from None
        if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped is not None:
            raise ValueError(f"{path}: {value!r} is an IPv4-mapped IPv6 CIDR; write the IPv4 CIDR")
    return values
