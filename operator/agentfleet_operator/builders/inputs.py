"""What the builders need beyond the Agent's spec: its references, already resolved by the caller."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..api.agent import AgentConnectorRef, AgentSpec
from ..api.connector import ConnectorSpec, DiscoveredTool
from ..api.statepolicy import StatePolicySpec
from .egress import EgressSettings, ServiceKey, ServiceView


@dataclass(frozen=True)
class AgentTarget:
    """The Agent an agent Connector calls, as the caller's pods reach it: its Service, and the one
    key of its access Secret they present (mounted into the caller's pods)."""

    name: str
    endpoint: str
    access_secret: str
    key: str


@dataclass(frozen=True)
class ResolvedConnector:
    ref: AgentConnectorRef
    spec: ConnectorSpec
    # mcp: the discovered tools this Agent uses (from the Connector's status).
    tools: tuple[DiscoveredTool, ...] = ()
    target: AgentTarget | None = None  # type agent only

    @property
    def endpoint(self) -> str:
        """Where the pods send this connector's calls."""
        if self.target is not None:
            return self.target.endpoint
        assert self.spec.endpoint is not None  # required by the API for every other type
        return self.spec.endpoint


@dataclass(frozen=True)
class ResolvedState:
    name: str
    spec: StatePolicySpec
    redis_url: str | None  # the URL agents use (provisioned or given)
    password_secret: tuple[str, str] | None  # (secret, key)
    # Redis stores: the operator-made Secret with the key session ids are hashed with (HMAC).
    session_key_secret: str | None = None


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
    # Hash of each Secret the pods read (by Secret name); part of the revision. Not the serving
    # certificate's (spec.access.tls): the runtime reloads a rotated one, so it must not roll the pods.
    secret_hashes: dict[str, str] = field(default_factory=dict)
    # The Services the URLs the pods call may name, as found (absent: no such Service); the
    # NetworkPolicy's egress is built from them (builders/egress.py). Not part of the revision.
    services: dict[ServiceKey, ServiceView] = field(default_factory=dict)
    egress_settings: EgressSettings = field(default_factory=EgressSettings)

    @property
    def tls_secret(self) -> str | None:
        """The kubernetes.io/tls Secret the pods serve HTTPS with, if any."""
        access = self.spec.access
        return access.tls.secret_ref.name if access is not None and access.tls is not None else None


Dependency = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class Problem:
    area: str  # "connectors" | "state" | "prompt" | "secrets"
    reason: str
    message: str


@dataclass
class Resolution:
    """What resolving an Agent's references found: the data the builders need, and the problems as
    values (they become conditions, never exceptions). Plain data, so the status rules can take it."""

    prompt_text: str = ""
    connectors: list[ResolvedConnector] = field(default_factory=list)
    state: ResolvedState | None = None
    secret_hashes: dict[str, str] = field(default_factory=dict)
    access_secret: str = ""
    generate_access_secret: bool = False
    services: dict[ServiceKey, ServiceView] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # Not the spec's fault and no reason to hold a rollout back, but the Agent is not fully usable.
    degraded: list[Problem] = field(default_factory=list)
    dependencies: set[Dependency] = field(default_factory=set)

    def problem(self, area: str, reason: str, message: str) -> None:
        self.problems.append(Problem(area, reason, message))

    def first(self, area: str) -> Problem | None:
        return next((p for p in self.problems if p.area == area), None)
