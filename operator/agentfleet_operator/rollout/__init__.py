"""Canary rollouts: a pure state machine (no I/O) and the analysis providers it asks for.

Layering: imports agentfleet_operator.api only; never kopf, kubernetes or the handlers.
"""

from .analysis import AnalysisProvider, PrometheusProvider
from .durations import format_time, parse_duration, parse_time, promql_duration
from .state_machine import (
    INTENT_ANNOTATIONS,
    Decision,
    Event,
    Observations,
    decide,
    intents_from_annotations,
)
from .traffic import achieved_weight, replicas_for_weight

__all__ = [
    "INTENT_ANNOTATIONS",
    "AnalysisProvider",
    "Decision",
    "Event",
    "Observations",
    "PrometheusProvider",
    "achieved_weight",
    "decide",
    "format_time",
    "intents_from_annotations",
    "parse_duration",
    "parse_time",
    "promql_duration",
    "replicas_for_weight",
]
