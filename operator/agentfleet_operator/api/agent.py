"""The Agent kind: an AI agent the operator runs as a Deployment of the agent runtime."""

from __future__ import annotations

from typing import Any, Literal

from agentfleet_contract.runtime_config import MAX_ANSWER_CACHE_SECONDS, checked_rule_pattern
from pydantic import Field, field_validator, model_validator

from .base import (
    CONDITIONS_EXTRA,
    DNS_LABEL,
    DURATION,
    HTTP_URL,
    TOOL_NAME,
    ApiModel,
    CABundleReference,
    Condition,
    ConfigMapKeyReference,
    LocalObjectReference,
    SecretKeyReference,
    cel,
    checked_cidrs,
    egress_cidrs,
    validations,
)


class ModelRule(ApiModel):
    """A deterministic rule of the built-in `rules` reasoner."""

    pattern: str = Field(
        min_length=1,
        max_length=1024,
        description="Regular expression (case-insensitive) matched against the user's message.",
    )
    tool: str | None = Field(
        default=None,
        max_length=63,
        pattern=TOOL_NAME,
        description="Tool to call when the pattern matches; arguments are filled from the pattern's groups.",
    )
    arguments: dict[str, str] = Field(
        default_factory=dict,
        description="Tool arguments as templates, e.g. {email: '{email}'} with a named group `email`.",
    )
    reply: str | None = Field(
        default=None,
        max_length=4096,
        description="Reply template; `{tool_result}` is replaced by the tool's answer.",
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        # The CRD cannot check this (CEL has no Python regular expressions); without it the runtime
        # config built from the Agent fails to validate, and its reconcile failed on every retry while
        # the Agent showed no status at all (found by tests/e2e/test_failures.py). Refused here, it is
        # InvalidSpec with this message.
        return checked_rule_pattern(value)


class ModelSpec(ApiModel):
    """Which model reasons for the agent."""

    model_config = validations(
        cel(
            "self.provider != 'openai-compatible' || has(self.endpoint)",
            "spec.model.endpoint is required when spec.model.provider is openai-compatible",
            ".endpoint",
        ),
        cel(
            "self.provider == 'rules' || !has(self.rules) || size(self.rules) == 0",
            "spec.model.rules may only be set when spec.model.provider is rules",
            ".rules",
        ),
        cel(
            "self.provider == 'openai-compatible' || !has(self.caBundleSecretRef)",
            "spec.model.caBundleSecretRef may only be set when spec.model.provider is openai-compatible",
            ".caBundleSecretRef",
        ),
        cel(
            "!has(self.egress) || size(self.egress) == 0 || has(self.endpoint)",
            "spec.model.egress may only be set with spec.model.endpoint",
            ".egress",
        ),
    )

    provider: Literal["openai-compatible", "rules"] = Field(
        description="openai-compatible: any OpenAI chat-completions endpoint; "
        "rules: the built-in deterministic reasoner (no LLM).",
    )
    name: str = Field(min_length=1, max_length=253, description="Model name sent to the provider, e.g. gpt-4o-mini.")
    endpoint: str | None = Field(
        default=None,
        max_length=2048,
        pattern=HTTP_URL,
        description="Base URL of the OpenAI-compatible API (…/v1). Required for openai-compatible.",
    )
    credentials_secret_ref: SecretKeyReference | None = Field(
        default=None,
        description="Secret key holding the provider's API key; mounted as a file, never an env var.",
    )
    ca_bundle_secret_ref: CABundleReference | None = Field(
        default=None,
        description="Secret key with PEM CA certificates the endpoint's certificate may chain to besides the "
        "public CAs (a private CA). Part of the revision: a changed bundle rolls out like any change.",
    )
    temperature: float = Field(default=0.2, ge=0, le=2, description="Sampling temperature, 0..2.")
    max_tokens: int | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="Upper bound of tokens per answer; a caller's max_tokens is capped by it.",
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=600,
        description="The whole budget of one request to the model, retries and tool rounds included; "
        "the runtime answers 504 (model_timeout) after it, or after the caller's own shorter timeout. "
        "Unset: no overall budget, only the runtime's per-attempt timeout.",
    )
    rules: list[ModelRule] = Field(
        default_factory=list,
        max_length=100,
        description="Rules of the `rules` provider, tried in order; the first match answers.",
    )
    egress: list[str] = egress_cidrs(
        "spec.model.egress",
        "Addresses (CIDRs) of the model's endpoint where it is outside the cluster, e.g. [203.0.113.0/24]. "
        "The Agent's NetworkPolicy allows egress only to what the pods call; a NetworkPolicy cannot name "
        "hosts, so an endpoint host that is not a Service of the cluster is reachable at these addresses only.",
    )

    @field_validator("egress")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return checked_cidrs("spec.model.egress", value)


class PromptSpec(ApiModel):
    """The system prompt, inline or from a ConfigMap (exactly one)."""

    model_config = validations(
        cel(
            "has(self.system) != has(self.configMapRef)",
            "spec.prompt: exactly one of system or configMapRef must be set",
        ),
    )

    system: str | None = Field(default=None, max_length=262144, description="The system prompt text.")
    config_map_ref: ConfigMapKeyReference | None = Field(
        default=None,
        description="ConfigMap key holding the system prompt; edits make a new revision.",
    )


class AgentConnectorRef(ApiModel):
    """A Connector the agent may use, and which of its tools."""

    name: str = Field(min_length=1, max_length=253, description="Name of a Connector in the same namespace.")
    tools: list[str] = Field(
        default_factory=list,
        max_length=128,
        description="Tool names the agent may call; empty means all tools of the Connector.",
        json_schema_extra={"items": {"type": "string", "maxLength": 63, "pattern": TOOL_NAME}},
    )


class AutoscalingSpec(ApiModel):
    """Horizontal autoscaling of the stable track (autoscaling/v2 HPA)."""

    min_replicas: int = Field(default=1, ge=1, le=1000, description="Lower bound of replicas, >= 1.")
    max_replicas: int = Field(ge=1, le=1000, description="Upper bound of replicas, >= minReplicas.")
    target_cpu_utilization: int | None = Field(
        default=None,
        ge=1,
        le=100,
        alias="targetCPUUtilization",
        description="Average CPU utilization (percent of requests) the autoscaler aims for.",
    )
    target_inflight_requests: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description="Average in-flight requests per pod (pods metric agent_inflight_requests).",
    )


QUANTITY: dict[str, Any] = {
    "additionalProperties": {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
        "pattern": (
            r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
            r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
        ),
    }
}


class ResourcesSpec(ApiModel):
    """Compute resources of each agent container (corev1.ResourceRequirements)."""

    requests: dict[str, Any] = Field(
        default_factory=dict,
        description="Minimum resources, e.g. {cpu: 100m, memory: 256Mi}.",
        json_schema_extra=QUANTITY,
    )
    limits: dict[str, Any] = Field(
        default_factory=dict,
        description="Maximum resources, e.g. {memory: 512Mi}.",
        json_schema_extra=QUANTITY,
    )


class AccessTLS(ApiModel):
    """HTTPS for the agent's API."""

    secret_ref: LocalObjectReference = Field(
        description="A kubernetes.io/tls Secret (keys tls.crt and tls.key), e.g. the one a cert-manager "
        "Certificate writes; its certificate should name <agent>.<namespace>.svc. Rotating it reloads the "
        "runtime's certificate in place: no new revision, no restart.",
    )


class AccessSpec(ApiModel):
    """Who may call the agent, and how."""

    api_key_secret_ref: LocalObjectReference | None = Field(
        default=None,
        description="Secret whose every key is an accepted caller key. Absent: the operator generates "
        "Secret <agent>-access with a random key.",
    )
    allowed_namespaces: list[str] | None = Field(
        default=None,
        max_length=64,
        description="Namespaces whose pods may connect (NetworkPolicy ingress). Absent: same namespace only.",
        json_schema_extra={"items": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL}},
    )
    tls: AccessTLS | None = Field(default=None, description="Serve HTTPS with this certificate. Absent: plain HTTP.")


class PauseStep(ApiModel):
    duration: str | None = Field(
        default=None,
        max_length=32,
        pattern=DURATION,
        description="How long to pause, e.g. 60s or 5m. Absent: wait for the promote intent.",
    )


class AnalysisStep(ApiModel):
    """Run the canary analysis now (its settings are in canary.analysis)."""


class CanaryStep(ApiModel):
    """One canary step: exactly one of setWeight, pause, analysis."""

    model_config = validations(
        cel(
            "(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0) == 1",
            "spec.rollout.canary.steps: each step must set exactly one of setWeight, pause or analysis",
        ),
    )

    set_weight: int | None = Field(default=None, ge=1, le=100, description="Percent of traffic to the canary, 1..100.")
    pause: PauseStep | None = Field(default=None, description="Pause for a duration, or until promoted.")
    analysis: AnalysisStep | None = Field(default=None, description="Measure the canary against its thresholds now.")


class AnalysisSpec(ApiModel):
    """How the canary is measured against Prometheus."""

    prometheus_url: str = Field(
        alias="prometheusURL",
        max_length=2048,
        pattern=HTTP_URL,
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.",
    )
    interval: str = Field(default="30s", max_length=32, pattern=DURATION, description="Measurement window and period.")
    max_error_ratio: float = Field(default=0.05, ge=0, le=1, description="Highest allowed canary 5xx/total ratio.")
    max_latency_p95_seconds: float = Field(
        default=2.0, gt=0, le=3600, alias="maxLatencyP95Seconds", description="Highest allowed canary p95 latency."
    )
    min_requests: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="Fewer canary requests in the window make a measurement inconclusive, never a pass.",
    )
    failure_limit: int = Field(default=2, ge=1, le=100, description="Failed measurements before the canary aborts.")
    inconclusive_limit: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive inconclusive measurements before the rollout pauses for a human.",
    )


class HTTPRouteRef(ApiModel):
    name: str = Field(min_length=1, max_length=253, description="Name of a Gateway API HTTPRoute in the namespace.")


class TrafficRoutingSpec(ApiModel):
    """Exact traffic splitting by a router instead of a replica ratio."""

    http_route: HTTPRouteRef | None = Field(
        default=None,
        alias="httpRoute",
        description="HTTPRoute whose backendRefs the operator weights between <agent>-stable and <agent>-canary.",
    )


class CanarySpec(ApiModel):
    steps: list[CanaryStep] = Field(
        min_length=1,
        max_length=32,
        description="Steps walked in order; after the last, the canary is promoted.",
    )
    analysis: AnalysisSpec | None = Field(default=None, description="Settings of the analysis steps.")
    progress_deadline_seconds: int = Field(
        default=600,
        ge=10,
        le=86400,
        description="A canary not progressing this long is aborted.",
    )
    traffic_routing: TrafficRoutingSpec | None = Field(
        default=None,
        description="Optional router for exact weights; absent: weight is a replica ratio.",
    )


class RolloutSpec(ApiModel):
    strategy: Literal["RollingUpdate", "Canary"] = Field(
        default="RollingUpdate",
        description="RollingUpdate replaces pods in place; Canary shifts traffic in steps.",
    )
    canary: CanarySpec | None = Field(default=None, description="Steps and analysis of the Canary strategy.")


class Toleration(ApiModel):
    key: str | None = Field(default=None, max_length=316, description="Taint key the toleration applies to.")
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Exists or Equal.")
    value: str | None = Field(default=None, max_length=63, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(default=None, description="Effect.")
    toleration_seconds: int | None = Field(default=None, description="For NoExecute: how long to stay bound.")


class PodTemplateSpec(ApiModel):
    """Scheduling fields passed through to the agent pods."""

    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels the pods must match.")
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32, description="Taints the pods tolerate.")
    priority_class_name: str | None = Field(default=None, max_length=253, description="PriorityClass of the pods.")
    affinity: dict[str, Any] | None = Field(
        default=None,
        description="corev1.Affinity, passed through unchanged.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class CacheSpec(ApiModel):
    """The answer cache (its rules are in AgentSpec.cache's description, which the CRD carries;
    the runtime's side is agentfleet_runtime/agent.py and memory/answer_cache.py)."""

    ttl_seconds: int = Field(
        ge=1,
        le=MAX_ANSWER_CACHE_SECONDS,
        description="How long a cached answer is served, counted from when it was stored (1 second to 7 days).",
    )


class AgentSpec(ApiModel):
    """Desired state of an agent."""

    image: str | None = Field(
        default=None,
        max_length=1024,
        description="Runtime image. Absent: the operator's default runtime image.",
    )
    model: ModelSpec = Field(description="The model that reasons for the agent.")
    prompt: PromptSpec = Field(description="The system prompt (exactly one of system, configMapRef).")
    connectors: list[AgentConnectorRef] = Field(
        default_factory=list,
        max_length=32,
        description="Connectors whose tools the agent may call.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    state_policy_ref: LocalObjectReference | None = Field(
        default=None,
        description="StatePolicy keeping conversations. Absent: stateless.",
    )
    cache: CacheSpec | None = Field(
        default=None,
        description="Opt-in exact-match answer cache, kept in the StatePolicy's store (needs statePolicyRef; Redis: "
        "shared by all pods, memory: per pod). A request is answered from it when this revision got exactly the "
        "same request (the conversation with its session history, the model parameters) within ttlSeconds. "
        "Cached are only requests whose effective temperature is 0 (spec.model.temperature 0 and none from the "
        "caller, or the caller's 0), answers given without a tool call that ended with finish_reason stop or "
        "length, and nothing in which the StatePolicy's redaction finds personal data. Keyed by an HMAC of the "
        "revision and the request, encrypted like sessions; a new revision never serves an older one's answers. "
        "Counted in agent_cache_requests_total{result=hit|miss|bypass}, named in the X-Agent-Cache header. "
        "Absent: every request reaches the model.",
    )
    replicas: int = Field(default=1, ge=0, le=1000, description="Pods of the stable track; ignored while autoscaling.")
    autoscaling: AutoscalingSpec | None = Field(default=None, description="Autoscaling of the stable track.")
    resources: ResourcesSpec | None = Field(default=None, description="Compute resources of each agent container.")
    access: AccessSpec | None = Field(default=None, description="Caller keys, allowed namespaces and TLS.")
    rollout: RolloutSpec | None = Field(default=None, description="How a new revision replaces the running one.")
    pod_template: PodTemplateSpec | None = Field(default=None, description="Scheduling fields of the agent pods.")

    # Cross-field rules the schema alone cannot say; each message names the field.
    model_config = validations(
        cel(
            "!has(self.autoscaling) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
            "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas",
            ".autoscaling.minReplicas",
        ),
        cel(
            "!has(self.rollout) || self.rollout.strategy != 'Canary' || has(self.rollout.canary)",
            "spec.rollout.canary is required when spec.rollout.strategy is Canary",
            ".rollout.canary",
        ),
        cel(
            "!has(self.rollout) || !has(self.rollout.canary) || "
            "!self.rollout.canary.steps.exists(s, has(s.analysis)) || has(self.rollout.canary.analysis)",
            "spec.rollout.canary.analysis is required when a canary step is an analysis step",
            ".rollout.canary.analysis",
        ),
        cel(
            "!has(self.cache) || has(self.statePolicyRef)",
            "spec.cache needs spec.statePolicyRef: cached answers are kept in the StatePolicy's store",
            ".cache",
        ),
    )

    @model_validator(mode="after")
    def _cache_needs_a_store(self) -> AgentSpec:
        """The CRD's rule again: without it the runtime config could not be built (InvalidSpec instead)."""
        if self.cache is not None and self.state_policy_ref is None:
            raise ValueError("spec.cache needs spec.statePolicyRef: cached answers are kept in the StatePolicy's store")
        return self


class AnalysisMeasurement(ApiModel):
    """One measurement of the canary, kept so users can see what was decided and why."""

    time: str = Field(description="When the measurement was taken (RFC 3339).")
    metric: str = Field(description="errorRatio or latencyP95.")
    query: str = Field(description="The PromQL query sent.")
    value: str = Field(default="", description="Measured canary value (empty when none).")
    stable_value: str = Field(default="", description="The stable revision's value over the same window.")
    threshold: str = Field(default="", description="The threshold it was compared with.")
    verdict: Literal["Passed", "Failed", "Inconclusive"] = Field(description="Passed, Failed or Inconclusive.")
    message: str = Field(default="", description="Why this verdict.")


class RevisionStatus(ApiModel):
    stable: str = Field(default="", description="Revision of the stable track.")
    canary: str = Field(default="", description="Revision of the canary track, empty when none.")


class RolloutStatus(ApiModel):
    phase: Literal["Idle", "Progressing", "Paused", "Promoting", "Aborted"] = Field(
        default="Idle",
        description="Idle, Progressing, Paused, Promoting or Aborted.",
    )
    step: int = Field(default=0, ge=0, description="Index of the current canary step.")
    weight: int = Field(default=0, ge=0, le=100, description="Percent of traffic the canary is meant to get.")
    actual_weight: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Percent achieved (replica ratio without a traffic router).",
    )
    message: str = Field(default="", description="What the rollout is doing or waiting for.")
    analysis: list[AnalysisMeasurement] = Field(
        default_factory=list,
        max_length=20,
        description="The last few measurements.",
    )
    step_started_at: str | None = Field(default=None, description="When the current step began (RFC 3339).")
    started_at: str | None = Field(default=None, description="When the canary began (RFC 3339).")
    last_progress_at: str | None = Field(default=None, description="Last time the canary made progress (RFC 3339).")
    failures: int = Field(default=0, ge=0, description="Failed measurements so far.")
    inconclusive: int = Field(default=0, ge=0, description="Consecutive inconclusive measurements.")
    aborted_revision: str = Field(default="", description="The revision that was rolled back, if any.")
    handled_intents: dict[str, str] = Field(
        default_factory=dict,
        description="Last value of each intent annotation acted upon (promote, abort, retry).",
    )


class ScalingStatus(ApiModel):
    """Who sets the stable Deployment's replica count, remembered so that a hand-off between the Agent
    and an autoscaler never resets the count (see docs/operations.md, "Replicas and autoscaling")."""

    owner: Literal["Agent", "HorizontalPodAutoscaler", "Deployment"] = Field(
        default="Agent",
        description="Agent: spec.replicas is applied. HorizontalPodAutoscaler: the HPA scales. Deployment: "
        "autoscaling was removed and the count the HPA left is kept until spec.replicas changes.",
    )
    spec_replicas: int | None = Field(
        default=None,
        ge=0,
        description="spec.replicas as last seen; a different value is an explicit new count.",
    )


class AgentStatus(ApiModel):
    observed_generation: int | None = Field(default=None, description="The generation this status describes.")
    phase: Literal["Pending", "Progressing", "Paused", "Ready", "Degraded", "Failed"] | None = Field(
        default=None,
        description="Summary for humans: Pending, Progressing, Paused, Ready, Degraded or Failed.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, Reconciling, Stalled, ConnectorsReady, StateReady, RolloutHealthy, EgressReady.",
        json_schema_extra=CONDITIONS_EXTRA,
    )
    replicas: int = Field(default=0, ge=0, description="Pods of the stable track (scale subresource).")
    ready_replicas: int = Field(default=0, ge=0, description="Ready pods of the stable track.")
    ready: str = Field(default="", description="Ready/desired pods, e.g. 2/2.")
    selector: str = Field(default="", description="Label selector of the stable pods (scale subresource).")
    endpoint: str = Field(default="", description="In-cluster URL of the agent.")
    revision: RevisionStatus = Field(default_factory=RevisionStatus, description="Stable and canary revisions.")
    rollout: RolloutStatus = Field(default_factory=RolloutStatus, description="Progress of the current rollout.")
    revision_history: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Recent revisions, newest first.",
    )
    scaling: ScalingStatus | None = Field(default=None, description="Who sets the stable replica count.")


class Agent(ApiModel):
    """An AI agent: model, prompt, tools from Connectors, state policy, scaling and rollout strategy."""

    spec: AgentSpec
    status: AgentStatus | None = None


AGENT_ROOT_VALIDATIONS = [
    # A rule on the root object; fieldPath makes the refusal name metadata.name instead of "<nil>".
    cel(
        "self.metadata.name.size() <= 47 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "must be a DNS-1035 label of at most 47 characters (it prefixes child names)",
        field_path=".metadata.name",
    ),
]
