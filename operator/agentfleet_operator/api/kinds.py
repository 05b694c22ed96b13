"""What the CRDs say about each kind beyond its schema: names, columns, subresources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .agent import AGENT_ROOT_VALIDATIONS, AgentSpec, AgentStatus
from .connector import ConnectorSpec, ConnectorStatus
from .identity import PLURAL_AGENTS, PLURAL_CONNECTORS, PLURAL_STATE_POLICIES
from .statepolicy import StatePolicySpec, StatePolicyStatus

CATEGORY = "agentfleet"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    description: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    columns: tuple[PrinterColumn, ...]
    scale: dict[str, str] | None = None
    root_validations: list[dict[str, str]] = field(default_factory=list)


AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")


def _condition(type_: str, what: str) -> str:
    return f'.status.conditions[?(@.type=="{type_}")].{what}'


AGENT = KindInfo(
    kind="Agent",
    plural=PLURAL_AGENTS,
    singular="agent",
    short_names=("agt",),
    description="An AI agent: model, prompt, tools from Connectors, state policy, scaling and rollout strategy.",
    spec_model=AgentSpec,
    status_model=AgentStatus,
    columns=(
        PrinterColumn("Ready", "string", ".status.ready", "Ready pods of the stable track / desired."),
        PrinterColumn("Phase", "string", ".status.phase", "Summary for humans."),
        PrinterColumn("Model", "string", ".spec.model.name", "Model name."),
        PrinterColumn("Canary", "integer", ".status.rollout.weight", "Percent of traffic on the canary."),
        AGE,
        PrinterColumn("Reason", "string", _condition("Ready", "reason"), "Why Ready is what it is.", priority=1),
        PrinterColumn("Endpoint", "string", ".status.endpoint", "In-cluster URL.", priority=1),
    ),
    scale={
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    },
    root_validations=AGENT_ROOT_VALIDATIONS,
)

CONNECTOR = KindInfo(
    kind="Connector",
    plural=PLURAL_CONNECTORS,
    singular="connector",
    short_names=("conn",),
    description="A link to an enterprise system whose credentials live in a Kubernetes Secret.",
    spec_model=ConnectorSpec,
    status_model=ConnectorStatus,
    columns=(
        PrinterColumn("Type", "string", ".spec.type", "http, webhook or mcp."),
        PrinterColumn("Endpoint", "string", ".spec.endpoint", "Base URL."),
        PrinterColumn("Ready", "string", _condition("Ready", "status"), "Whether agents can use it."),
        PrinterColumn("Used-By", "integer", ".status.usedBy", "Agents referencing it."),
        AGE,
        # -o wide: the default columns stay those of every type.
        PrinterColumn("Tools", "integer", ".status.toolCount", "mcp: tools discovered on the server.", priority=1),
    ),
)

STATE_POLICY = KindInfo(
    kind="StatePolicy",
    plural=PLURAL_STATE_POLICIES,
    singular="statepolicy",
    short_names=("stp",),
    description="How conversations are kept: store, TTL, history length, encryption, PII redaction.",
    spec_model=StatePolicySpec,
    status_model=StatePolicyStatus,
    columns=(
        PrinterColumn("Store", "string", ".spec.store.type", "redis or memory."),
        PrinterColumn("TTL", "integer", ".spec.session.ttlSeconds", "Idle session expiry in seconds."),
        PrinterColumn("Ready", "string", _condition("Ready", "status"), "Whether agents can use it."),
        PrinterColumn("Used-By", "integer", ".status.usedBy", "Agents referencing it."),
        AGE,
    ),
)

ALL_KINDS: tuple[KindInfo, ...] = (AGENT, CONNECTOR, STATE_POLICY)


def crd_name(info: KindInfo, group: str) -> str:
    return f"{info.plural}.{group}"


def schema_extra(info: KindInfo) -> dict[str, Any]:
    return {"x-kubernetes-validations": info.root_validations} if info.root_validations else {}
