"""What the builders need beyond the Agent's spec: its references, already resolved by the caller."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.agent import AgentConnectorRef, AgentSpec
from ..api.connector import ConnectorSpec
from ..api.statepolicy import StatePolicySpec


@dataclass(frozen=True)
class ResolvedConnector:
    ref: AgentConnectorRef
    spec: ConnectorSpec


@dataclass(frozen=True)
class ResolvedState:
    name: str
    spec: StatePolicySpec
    redis_url: str | None  # the URL agents use (provisioned or given)
    password_secret: tuple[str, str] | None  # (secret, key)


@dataclass(frozen=True)
class ResolvedAgent:
    """An Agent plus everything it references, as found in the cluster."""

    name: str
    namespace: str
    uid: str
    spec: AgentSpec
    image: str
    prompt_text: str
    connectors: tuple[ResolvedConnector, ...] = ()
    state: ResolvedState | None = None
    access_secret: str = ""
    # Hash of each Secret the pods read (by Secret name); part of the revision.
    secret_hashes: dict[str, str] = field(default_factory=dict)
