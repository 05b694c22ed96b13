"""The API of agentfleet as pydantic models: the single source of truth of the CRDs."""

from .agent import Agent, AgentSpec, AgentStatus
from .base import API_VERSION, GROUP, VERSION
from .connector import SECRET_KEYS_BY_AUTH, Connector, ConnectorSpec, ConnectorStatus
from .kinds import AGENT, ALL_KINDS, CONNECTOR, STATE_POLICY, KindInfo
from .statepolicy import StatePolicy, StatePolicySpec, StatePolicyStatus

__all__ = [
    "AGENT",
    "ALL_KINDS",
    "API_VERSION",
    "CONNECTOR",
    "GROUP",
    "SECRET_KEYS_BY_AUTH",
    "STATE_POLICY",
    "VERSION",
    "Agent",
    "AgentSpec",
    "AgentStatus",
    "Connector",
    "ConnectorSpec",
    "ConnectorStatus",
    "KindInfo",
    "StatePolicy",
    "StatePolicySpec",
    "StatePolicyStatus",
]
