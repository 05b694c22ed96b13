"""Every reason the operator writes into a condition or an Event, in one file (as argo-rollouts keeps
its in utils/conditions): the public vocabulary users alert on, search for and read in
docs/operations.md, which a unit test keeps in step with this list.

The kubelet's reasons for pods that cannot start (CrashLoopBackOff, ImagePullBackOff, ...) are passed
through as they come; builders/pod_health.py lists the ones it recognises."""

from __future__ import annotations

# Healthy and in-progress states --------------------------------------------------------------------
READY = "Ready"  # Connector and StatePolicy Ready=True
AGENT_READY = "AgentReady"  # Agent Ready=True, and its Event when it becomes so
IDLE = "Idle"  # Reconciling=False: nothing to do
HEALTHY = "Healthy"  # Stalled=False
PROGRESSING = "Progressing"  # Stalled=False while pods roll out
ROLLOUT_IN_PROGRESS = "RolloutInProgress"
RESOLVED = "Resolved"  # ConnectorsReady / StateReady
STATELESS = "Stateless"  # StateReady=True without a StatePolicy
ROLLED_OUT = "RolledOut"  # RolloutHealthy=True, no rollout in progress
REVISION_ROLLED_OUT = "RevisionRolledOut"  # Event: a new stable revision
SECRET_RESOLVED = "SecretResolved"
NO_CREDENTIALS = "NoCredentials"
REDIS_READY = "RedisReady"
REACHABLE = "Reachable"
DISCOVERED = "Discovered"  # ToolsDiscovered=True: the MCP server listed its tools
IN_MEMORY = "InMemory"
EGRESS_ALLOWED = "EgressAllowed"  # EgressReady=True: the NetworkPolicy allows every place the pods call

# The canary (rollout/state_machine.py and builders/agent_status.py) ----------------------------------
CANARY_STARTED = "CanaryStarted"
CANARY_SUPERSEDED = "CanarySuperseded"
CANARY_RETRIED = "CanaryRetried"
CANARY_CANCELLED = "CanaryCancelled"
CANARY_PROGRESSING = "CanaryProgressing"
CANARY_PAUSED = "CanaryPaused"
ROLLING_UPDATE = "RollingUpdate"
PROMOTED = "Promoted"
PROMOTE_REQUESTED = "PromoteRequested"
ABORT_REQUESTED = "AbortRequested"
ABORT_CLEARED = "AbortCleared"
RETRY_REQUESTED = "RetryRequested"
INTENT_IGNORED = "IntentIgnored"
ANALYSIS_PASSED = "AnalysisPassed"
ANALYSIS_FAILED = "AnalysisFailed"
ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
ROLLED_BACK = "RolledBack"
HTTP_ROUTE_NOT_FOUND = "HTTPRouteNotFound"
HTTP_ROUTE_NOT_ROUTED = "HTTPRouteNotRouted"
HTTP_ROUTE_UNAVAILABLE = "HTTPRouteUnavailable"

# Problems a user must fix (or that fix themselves when the missing piece appears) ------------------
INVALID_SPEC = "InvalidSpec"
CONNECTOR_NOT_FOUND = "ConnectorNotFound"
CONNECTOR_INVALID = "ConnectorInvalid"
TOOL_NOT_FOUND = "ToolNotFound"
AGENT_NOT_FOUND = "AgentNotFound"  # an agent Connector's target Agent does not exist
TOOL_LOOP = "ToolLoop"  # agent Connectors lead from an Agent back to itself
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_KEY_MISSING = "SecretKeyMissing"
PROMPT_NOT_FOUND = "PromptNotFound"
PROMPT_KEY_MISSING = "PromptKeyMissing"
STATE_POLICY_NOT_FOUND = "StatePolicyNotFound"
STATE_STORE_NOT_READY = "StateStoreNotReady"
DEPLOYMENT_UNAVAILABLE = "DeploymentUnavailable"
FORBIDDEN = "Forbidden"
APPLY_FAILED = "ApplyFailed"
REDIS_NOT_READY = "RedisNotReady"
NOT_CHECKED = "NotChecked"
CONNECTION_REFUSED = "ConnectionRefused"
AUTH_FAILED = "AuthFailed"
TIMEOUT = "Timeout"
UNREACHABLE = "Unreachable"
PROTOCOL_ERROR = "ProtocolError"  # the MCP server answered, but not as MCP
DISCOVERING = "Discovering"  # ToolsDiscovered=Unknown: the first tools/list is under way
TOOLS_NOT_DISCOVERED = "ToolsNotDiscovered"  # an Agent waits for its MCP Connector's first discovery
# EgressReady=False (Agent, Connector): a place the pods call that their NetworkPolicy does not allow.
# Never Ready=False: many clusters enforce no NetworkPolicy, and there the calls go through.
EGRESS_CIDRS_MISSING = "EgressCIDRsMissing"  # a host outside the cluster, and no CIDRs for it
EGRESS_SERVICE_NOT_FOUND = "EgressServiceNotFound"  # <svc>.<ns>.svc names no Service (yet)
EGRESS_SERVICE_PORT_NOT_FOUND = "EgressServicePortNotFound"  # the Service has no such port

ALL: frozenset[str] = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)
