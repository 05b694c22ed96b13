"""The install manifests render, and what they render keeps its promises.

`kubectl kustomize` renders manifests/base (CRDs + operator), manifests/base/operator,
manifests/monitoring and manifests/argocd exactly as `kubectl apply -k` would. On the result:
least-privilege RBAC pinned rule by rule, the restricted pod security of the operator, selectors
and port names that actually connect (Service -> pod, ServiceMonitor -> Service), PromQL that
`promtool check rules` accepts, alerts that `promtool test rules` proves fire (and stay quiet), and
dashboard queries that only use metric names the operator and runtime export.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import tool

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
NAMESPACE = "agentfleet-system"
OPERATOR = "agentfleet-operator"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]

# Metric names the operator exports (its contract with these manifests) and those of the runtime
# (shared/API.md). Histograms also expose _bucket, _sum and _count.
OPERATOR_METRICS = {
    "agentfleet_reconcile_total",
    "agentfleet_reconcile_duration_seconds",
    "agentfleet_reconcile_errors_total",
    "agentfleet_managed_objects",
    "agentfleet_rollout_weight",
    "agentfleet_rollout_phase",
    "agentfleet_analysis_measurements_total",
}
RUNTIME_METRICS = {
    "agent_requests_total",
    "agent_request_duration_seconds",
    "agent_inflight_requests",
    "gen_ai_client_token_usage",
    "gen_ai_client_operation_duration_seconds",
    "agent_tool_calls_total",
    "agent_tool_call_duration_seconds",
    "agent_cache_requests_total",
    "agent_tool_cache_requests_total",
}
HISTOGRAMS = {
    "agentfleet_reconcile_duration_seconds",
    "agent_request_duration_seconds",
    "gen_ai_client_token_usage",
    "gen_ai_client_operation_duration_seconds",
    "agent_tool_call_duration_seconds",
}
KNOWN_METRICS = (
    OPERATOR_METRICS
    | RUNTIME_METRICS
    | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)
# Words with our metric prefixes that are label names, not metrics.
KNOWN_LABEL_NAMES = {"gen_ai_token_type"}
METRIC_WORD = re.compile(r"\b(?:agentfleet|agent|gen_ai)_[a-z0-9_]+\b")

# The exact RBAC of the operator: (apiGroup, resource) -> verbs. Widening it must change this
# table, in review, next to the comment in clusterrole.yaml that justifies it.
EXPECTED_RBAC: dict[tuple[str, str], set[str]] = {
    **{("agentfleet.dev", r): {"get", "list", "watch"} for r in ("agents", "connectors", "statepolicies")},
    **{
        ("agentfleet.dev", f"{r}/status"): {"get", "patch", "update"} for r in ("agents", "connectors", "statepolicies")
    },
    ("agentfleet.dev", "agents/finalizers"): {"update"},
    ("agentfleet.dev", "statepolicies/finalizers"): {"update"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("", "pods"): {"get", "list"},
    ("", "configmaps"): {"get", "list", "watch", "create", "patch", "update", "delete"},
    ("", "secrets"): {"get", "list", "watch", "create", "patch"},
    ("", "serviceaccounts"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "services"): {"get", "list", "watch", "create", "patch", "delete"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "delete"},
    ("apps", "statefulsets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "watch", "create", "patch", "delete"},
    ("policy", "poddisruptionbudgets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("networking.k8s.io", "networkpolicies"): {"get", "list", "watch", "create", "patch", "delete"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
    ("", "namespaces"): {"get", "list", "watch"},
    ("coordination.k8s.io", "leases"): {"get", "list", "watch", "create", "patch", "update"},
    ("gateway.networking.k8s.io", "httproutes"): {"get", "list", "watch", "patch"},
}

# The namespace roles (manifests/base/operator/namespace-roles.yaml, docs/operations.md "Namespace
# roles"): (resource, verb) pairs in agentfleet.dev, and the built-in role each is aggregated into.
_KINDS = ("agents", "connectors", "statepolicies")
_VIEW = {(r, v) for r in (*_KINDS, *(f"{k}/status" for k in _KINDS), "agents/scale") for v in ("get", "list", "watch")}
_EDIT = (
    _VIEW
    | {(r, v) for r in _KINDS for v in ("create", "update", "patch", "delete", "deletecollection")}
    | {("agents/scale", "update"), ("agents/scale", "patch")}
)
NAMESPACE_ROLES: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "agentfleet-view": ("view", _VIEW),
    "agentfleet-edit": ("edit", _EDIT),
    "agentfleet-admin": ("admin", _EDIT),
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}

REQUIRED_ALERTS = {
    "AgentfleetReconcileErrors",
    "AgentDegraded",
    "AgentRolloutStuck",
    "AgentHighErrorRatio",
}


# --------------------------------------------------------------------------------------------
# helpers


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory.relative_to(REPO)} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


def unknown_metrics(expr: str) -> set[str]:
    return {w for w in METRIC_WORD.findall(expr) if w not in KNOWN_METRICS | KNOWN_LABEL_NAMES}


# --------------------------------------------------------------------------------------------
# manifests/base


@pytest.fixture(scope="module")
def operator_docs() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS / "base" / "operator")


@pytest.fixture(scope="module")
def deployment(operator_docs: list[dict[str, Any]]) -> dict[str, Any]:
    return find(operator_docs, "Deployment", OPERATOR)


@pytest.fixture(scope="module")
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_base_renders_with_the_crds() -> None:
    # The full install. manifests/crds is generated (make manifests); name what is missing
    # rather than leaving kustomize's error to decode.
    crds_kustomization = yaml.safe_load((MANIFESTS / "crds" / "kustomization.yaml").read_text())
    missing = [r for r in crds_kustomization["resources"] if not (MANIFESTS / "crds" / r).exists()]
    assert not missing, f"manifests/crds lists {missing}, not generated yet (run the CRD generator)"

    docs = kustomize(MANIFESTS / "base")

    crds = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert crds == {"agents.agentfleet.dev", "connectors.agentfleet.dev", "statepolicies.agentfleet.dev"}
    operator_objects = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] != "CustomResourceDefinition"}
    assert ("Deployment", OPERATOR) in operator_objects


def test_operator_objects(operator_docs: list[dict[str, Any]]) -> None:
    assert {(d["kind"], d["metadata"]["name"]) for d in operator_docs} == {
        ("Namespace", NAMESPACE),
        ("ServiceAccount", OPERATOR),
        ("ClusterRole", OPERATOR),
        ("ClusterRoleBinding", OPERATOR),
        ("Deployment", OPERATOR),
        ("Service", "agentfleet-operator-metrics"),
        *(("ClusterRole", role) for role in NAMESPACE_ROLES),
        ("ValidatingAdmissionPolicy", "agentfleet-references"),
        ("ValidatingAdmissionPolicyBinding", "agentfleet-references"),
    }
    for doc in operator_docs:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "agentfleet", doc["metadata"]["name"]
        assert labels.get("app.kubernetes.io/component"), f"{doc['kind']} has no component label"
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"]["namespace"] == NAMESPACE


def test_namespace_enforces_restricted_pod_security(operator_docs: list[dict[str, Any]]) -> None:
    labels = find(operator_docs, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_cluster_role_has_no_wildcards(operator_docs: list[dict[str, Any]]) -> None:
    role = find(operator_docs, "ClusterRole", OPERATOR)
    strings = [v for v in walk(role["rules"]) if isinstance(v, str)]
    assert strings, "no rules rendered"
    assert not [s for s in strings if "*" in s]
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert not verbs & {"escalate", "bind", "impersonate", "deletecollection"}
    assert "aggregationRule" not in role
    assert all("nonResourceURLs" not in rule for rule in role["rules"])


def test_cluster_role_is_exactly_the_reviewed_rule_set(operator_docs: list[dict[str, Any]]) -> None:
    role = find(operator_docs, "ClusterRole", OPERATOR)
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == EXPECTED_RBAC


def test_every_rbac_rule_is_commented() -> None:
    # Comments do not survive rendering: check the source that reviewers read.
    lines = (MANIFESTS / "base" / "operator" / "clusterrole.yaml").read_text().splitlines()
    rule_starts = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    assert len(rule_starts) == len(find_rules_in_source(lines))
    uncommented = [i + 1 for i in rule_starts if not lines[i - 1].strip().startswith("#")]
    assert not uncommented, f"rules without a comment right above them at lines {uncommented}"


def find_rules_in_source(lines: list[str]) -> list[int]:
    """Line numbers of rule items, however they are written (catches `- verbs:` first)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("rules:"))
    return [i for i, line in enumerate(lines[start + 1 :], start + 1) if line.startswith("  - ")]


@pytest.mark.parametrize("name", list(NAMESPACE_ROLES))
def test_namespace_roles_are_exactly_the_documented_verbs_aggregated_to_the_built_in_role(
    operator_docs: list[dict[str, Any]], name: str
) -> None:
    built_in, expected = NAMESPACE_ROLES[name]
    role = find(operator_docs, "ClusterRole", name)
    aggregation = {k: v for k, v in role["metadata"]["labels"].items() if k.startswith("rbac.authorization.k8s.io/")}
    assert aggregation == {f"rbac.authorization.k8s.io/aggregate-to-{built_in}": "true"}
    assert "aggregationRule" not in role
    granted: set[tuple[str, str]] = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["agentfleet.dev"] and "resourceNames" not in rule
        granted |= {(r, v) for r in rule["resources"] for v in rule["verbs"]}
    assert granted == expected


def test_namespace_role_rules_are_commented() -> None:
    lines = (MANIFESTS / "base" / "operator" / "namespace-roles.yaml").read_text().splitlines()
    rule_starts = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    assert len(rule_starts) == 7
    assert all(lines[i - 1].strip().startswith("#") for i in rule_starts)


def test_admission_policy_gates_writes_of_the_main_resources_only(operator_docs: list[dict[str, Any]]) -> None:
    policy = find(operator_docs, "ValidatingAdmissionPolicy", "agentfleet-references")["spec"]
    assert policy["failurePolicy"] == "Fail"
    [rule] = policy["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == ["agentfleet.dev"] and rule["operations"] == ["CREATE", "UPDATE"]
    # No subresource: the operator's status writes and `kubectl scale` are not gated.
    assert rule["resources"] == ["agents", "connectors", "statepolicies"]
    assert all(v["reason"] == "Forbidden" and v["messageExpression"] for v in policy["validations"])
    binding = find(operator_docs, "ValidatingAdmissionPolicyBinding", "agentfleet-references")["spec"]
    assert binding == {"policyName": "agentfleet-references", "validationActions": ["Deny"]}


def test_binding_grants_the_role_to_the_deployment_service_account(
    operator_docs: list[dict[str, Any]], deployment: dict[str, Any]
) -> None:
    binding = find(operator_docs, "ClusterRoleBinding", OPERATOR)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": OPERATOR,
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": NAMESPACE}]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == OPERATOR
    find(operator_docs, "ServiceAccount", OPERATOR)


def test_deployment_pod_security(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    pod_sc = pod["securityContext"]
    sc = container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == 65532 and sc["runAsUser"] == 65532
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    volumes = pod.get("volumes", [])
    assert all("hostPath" not in v for v in volumes)


def test_deployment_shape(deployment: dict[str, Any], container: dict[str, Any]) -> None:
    spec = deployment["spec"]
    assert spec["replicas"] == 2  # HA: one leader reconciles, a warm standby takes over
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()

    # A plain name:tag the kustomize images transformer can rewrite, pinned to this release.
    assert container["image"] == f"ghcr.io/agentfleet/agentfleet-operator:{VERSION}"
    assert container["command"] == ["agentfleet-operator"]
    assert container["args"] == ["--all-namespaces", "--metrics-port=9090", "--log-format=json", "--leader-elect"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AGENTFLEET_RUNTIME_IMAGE"] == f"ghcr.io/agentfleet/agentfleet-runtime:{VERSION}"

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9090, "health": 8081}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == 8081

    resources = container["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert resources["limits"] == {"memory": "512Mi"}


def test_metrics_service_reaches_the_operator_pod(
    operator_docs: list[dict[str, Any]], deployment: dict[str, Any], container: dict[str, Any]
) -> None:
    service = find(operator_docs, "Service", "agentfleet-operator-metrics")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["name"] == "metrics" and port["port"] == 9090
    assert port["targetPort"] in {p["name"] for p in container["ports"]}


# --------------------------------------------------------------------------------------------
# manifests/monitoring


@pytest.fixture(scope="module")
def monitoring_docs() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS / "monitoring")


@pytest.fixture(scope="module")
def rule_groups(monitoring_docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return find(monitoring_docs, "PrometheusRule", "agentfleet")["spec"]["groups"]


@pytest.fixture(scope="module")
def dashboard(monitoring_docs: list[dict[str, Any]]) -> dict[str, Any]:
    config_map = find(monitoring_docs, "ConfigMap", "agentfleet-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == NAMESPACE
    [(key, text)] = config_map["data"].items()
    assert key.endswith(".json")
    return json.loads(text)


def test_monitoring_objects(monitoring_docs: list[dict[str, Any]]) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in monitoring_docs}
    assert kinds == {
        ("ServiceMonitor", "agentfleet-operator"),
        ("PodMonitor", "agentfleet-agents"),
        ("PrometheusRule", "agentfleet"),
        ("ConfigMap", "agentfleet-grafana-dashboard"),
    }
    for doc in monitoring_docs:
        assert doc["metadata"]["namespace"] == NAMESPACE
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "agentfleet"


def test_monitoring_is_a_component_without_global_transformers() -> None:
    # Included with `components:`, a namespace or labels field would rewrite the whole overlay.
    kustomization = yaml.safe_load((MANIFESTS / "monitoring" / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    assert not {"namespace", "labels", "commonLabels", "commonAnnotations"} & kustomization.keys()


def test_service_monitor_selects_the_operator_metrics_service(
    monitoring_docs: list[dict[str, Any]], operator_docs: list[dict[str, Any]]
) -> None:
    monitor = find(monitoring_docs, "ServiceMonitor", "agentfleet-operator")
    selected = [
        d
        for d in operator_docs
        if d["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()
        and d["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
    ]
    assert [s["metadata"]["name"] for s in selected] == ["agentfleet-operator-metrics"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert endpoint["port"] == "metrics"
    # Per-agent operator series carry the Agent's namespace; it must not become exported_namespace.
    assert endpoint["honorLabels"] is True


def test_pod_monitor_selects_agent_pods_everywhere(monitoring_docs: list[dict[str, Any]]) -> None:
    spec = find(monitoring_docs, "PodMonitor", "agentfleet-agents")["spec"]
    assert spec["namespaceSelector"] == {"any": True}
    assert spec["selector"]["matchExpressions"] == [{"key": "agentfleet.dev/agent", "operator": "Exists"}]
    [endpoint] = spec["podMetricsEndpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert targets["agent"] == ["__meta_kubernetes_pod_label_agentfleet_dev_agent"]


def test_required_alerts_exist_with_severity_and_runbook(rule_groups: list[dict[str, Any]]) -> None:
    alerts = {r["alert"]: r for g in rule_groups for r in g["rules"] if "alert" in r}
    assert alerts.keys() >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == name.lower(), f"{name} runbook anchor"
    assert "agentfleet_reconcile_errors_total" in alerts["AgentfleetReconcileErrors"]["expr"]
    assert alerts["AgentfleetReconcileErrors"]["for"] == "10m"
    assert 'kind="Agent"' in alerts["AgentDegraded"]["expr"]
    assert alerts["AgentDegraded"]["for"] == "10m"
    assert "agentfleet_rollout_weight" in alerts["AgentRolloutStuck"]["expr"]
    assert 'code=~"5.."' in alerts["AgentHighErrorRatio"]["expr"]
    assert alerts["AgentHighErrorRatio"]["for"] == "10m"


def test_runbook_anchors_exist_in_the_operations_guide(rule_groups: list[dict[str, Any]]) -> None:
    guide = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    headings = {line.lstrip("#").strip().lower() for line in guide.splitlines() if line.startswith("#")}
    for group in rule_groups:
        for rule in group["rules"]:
            assert rule["alert"].lower() in headings, f"docs/operations.md has no heading {rule['alert']}"


def test_rules_use_only_known_metrics(rule_groups: list[dict[str, Any]]) -> None:
    for group in rule_groups:
        for rule in group["rules"]:
            assert not unknown_metrics(rule["expr"]), rule.get("alert")


def test_promtool_check_rules(rule_groups: list[dict[str, Any]], tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups}))
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rule_groups)} rules found" in result.stdout


ALERT_UNIT_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  # Everything wrong at once: each alert fires for its culprit only, after its `for`.
  - interval: 1m
    input_series:
      - series: 'up{job="agentfleet-operator-metrics"}'
        values: '0x100'
      - series: 'agentfleet_reconcile_errors_total{kind="Agent",reason="ConnectorNotFound"}'
        values: '0+6x100'
      - series: 'agentfleet_reconcile_errors_total{kind="Connector",reason="SecretNotFound"}'
        values: '3x100'
      - series: 'agentfleet_managed_objects{kind="Agent",phase="Degraded"}'
        values: '2x100'
      - series: 'agentfleet_managed_objects{kind="Agent",phase="Ready"}'
        values: '5x100'
      - series: 'agentfleet_managed_objects{kind="Connector",phase="Failed"}'
        values: '1x100'
      - series: 'agentfleet_rollout_phase{namespace="support",agent="stuck",phase="Progressing"}'
        values: '1x100'
      - series: 'agentfleet_rollout_weight{namespace="support",agent="stuck"}'
        values: '10x100'
      - series: 'agentfleet_rollout_phase{namespace="support",agent="moving",phase="Progressing"}'
        values: '1x100'
      - series: 'agentfleet_rollout_weight{namespace="support",agent="moving"}'
        values: '0+1x100'
      - series: 'agentfleet_rollout_phase{namespace="support",agent="rolled-back",phase="Aborted"}'
        values: '1x100'
      - series: 'agent_requests_total{namespace="support",agent="failing",code="200"}'
        values: '0+600x100'
      - series: 'agent_requests_total{namespace="support",agent="failing",code="503"}'
        values: '0+60x100'
      - series: 'agent_requests_total{namespace="support",agent="fine",code="200"}'
        values: '0+600x100'
      - series: 'agent_requests_total{namespace="support",agent="fine",code="500"}'
        values: '0+6x100'
      - series: 'agent_requests_total{namespace="support",agent="quiet",code="500"}'
        values: '0+1x100'
    alert_rule_test:
      - {eval_time: 3m, alertname: AgentfleetOperatorDown, exp_alerts: []}
      - eval_time: 10m
        alertname: AgentfleetOperatorDown
        exp_alerts: [{exp_labels: {severity: critical}}]
      - {eval_time: 5m, alertname: AgentfleetReconcileErrors, exp_alerts: []}
      - eval_time: 20m
        alertname: AgentfleetReconcileErrors
        exp_alerts: [{exp_labels: {severity: warning, kind: Agent, reason: ConnectorNotFound}}]
      - eval_time: 20m
        alertname: AgentDegraded
        exp_alerts: [{exp_labels: {severity: warning, phase: Degraded}}]
      - {eval_time: 30m, alertname: AgentRolloutStuck, exp_alerts: []}
      - eval_time: 70m
        alertname: AgentRolloutStuck
        exp_alerts: [{exp_labels: {severity: warning, namespace: support, agent: stuck}}]
      - eval_time: 5m
        alertname: AgentRolloutAborted
        exp_alerts: [{exp_labels: {severity: warning, namespace: support, agent: rolled-back}}]
      - {eval_time: 5m, alertname: AgentHighErrorRatio, exp_alerts: []}
      - eval_time: 20m
        alertname: AgentHighErrorRatio
        exp_alerts: [{exp_labels: {severity: critical, namespace: support, agent: failing}}]
  # A healthy fleet: nothing fires, ever.
  - interval: 1m
    input_series:
      - series: 'up{job="agentfleet-operator-metrics"}'
        values: '1x100'
      - series: 'agentfleet_reconcile_errors_total{kind="Agent",reason="ConnectorNotFound"}'
        values: '4x100'
      - series: 'agentfleet_managed_objects{kind="Agent",phase="Ready"}'
        values: '5x100'
      - series: 'agentfleet_managed_objects{kind="Agent",phase="Degraded"}'
        values: '0x100'
      - series: 'agentfleet_rollout_phase{namespace="support",agent="bot",phase="Progressing"}'
        values: '0x100'
      - series: 'agentfleet_rollout_phase{namespace="support",agent="bot",phase="Idle"}'
        values: '1x100'
      - series: 'agentfleet_rollout_weight{namespace="support",agent="bot"}'
        values: '0x100'
      - series: 'agent_requests_total{namespace="support",agent="bot",code="200"}'
        values: '0+600x100'
    alert_rule_test:
      - {eval_time: 90m, alertname: AgentfleetOperatorDown, exp_alerts: []}
      - {eval_time: 90m, alertname: AgentfleetReconcileErrors, exp_alerts: []}
      - {eval_time: 90m, alertname: AgentDegraded, exp_alerts: []}
      - {eval_time: 90m, alertname: AgentRolloutStuck, exp_alerts: []}
      - {eval_time: 90m, alertname: AgentRolloutAborted, exp_alerts: []}
      - {eval_time: 90m, alertname: AgentHighErrorRatio, exp_alerts: []}
"""


def test_promtool_alerts_fire_when_they_should(rule_groups: list[dict[str, Any]], tmp_path: Path) -> None:
    # promtool compares annotations too; they are prose (checked by `check rules` above), so this
    # copy drops them and the test pins when each alert fires and with which labels.
    groups = copy.deepcopy(rule_groups)
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (tmp_path / "tests.yaml").write_text(ALERT_UNIT_TESTS)
    tested = set(re.findall(r"alertname: (\w+)", ALERT_UNIT_TESTS))
    assert tested == {r["alert"] for g in rule_groups for r in g["rules"]}, "every alert needs a test"

    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query target of every panel."""
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["expr"]))
    return queries


def test_dashboard_has_the_panels_operators_need(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "agentfleet-overview"
    by_title = {p["title"]: p for p in dashboard["panels"] if p["type"] != "row"}

    def exprs(title_word: str) -> str:
        matches = [t for t in by_title if title_word.lower() in t.lower()]
        assert matches, f"no panel titled like {title_word!r}"
        return " ".join(t["expr"] for m in matches for t in by_title[m]["targets"])

    assert "agentfleet_managed_objects" in exprs("Fleet health") and "phase" in exprs("Fleet health")
    assert "rate(agent_requests_total" in exprs("Requests per second")
    p95 = exprs("p95 latency")
    assert "histogram_quantile(0.95" in p95 and "agent_request_duration_seconds_bucket" in p95
    assert "gen_ai_client_token_usage" in exprs("Token usage")
    assert "agent_tool_calls_total" in exprs("Tool calls") and "outcome" in exprs("Tool calls")
    assert "agentfleet_rollout_weight" in exprs("Canary weight")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_uses_only_known_metrics(dashboard: dict[str, Any]) -> None:
    texts = [expr for _, expr in dashboard_queries(dashboard)]
    texts += [v["definition"] for v in dashboard["templating"]["list"] if v.get("type") == "query"]
    for text in texts:
        assert not unknown_metrics(text), text


def test_dashboard_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    # promtool has no "check expression"; recording rules are the way to make it parse them.
    # Grafana's variables are replaced by values of the kind Grafana would put there.
    substitutions = {"$__rate_interval": "5m", "$namespace": ".*", "$agent": ".*"}
    rules = []
    for index, (title, expr) in enumerate(dashboard_queries(dashboard)):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unhandled Grafana variable in {title!r}: {expr}"
        rules.append({"record": f"agentfleet:dashboard_query_{index}", "expr": expr})
    assert len(rules) >= 6
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# manifests/argocd


@pytest.fixture(scope="module")
def argocd_docs() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS / "argocd")


def test_argocd_renders_health_checks_and_applications(argocd_docs: list[dict[str, Any]]) -> None:
    config_map = find(argocd_docs, "ConfigMap", "argocd-cm")
    assert set(config_map["data"]) == {
        f"resource.customizations.health.agentfleet.dev_{kind}" for kind in ("Agent", "Connector", "StatePolicy")
    }
    apps = {d["metadata"]["name"] for d in argocd_docs if d["kind"] == "Application"}
    assert apps == {"agentfleet-crds", "agentfleet-operator"}


def test_crds_application_syncs_first_and_never_prunes(argocd_docs: list[dict[str, Any]]) -> None:
    app = find(argocd_docs, "Application", "agentfleet-crds")
    assert app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    sync = app["spec"]["syncPolicy"]
    assert "ServerSideApply=true" in sync["syncOptions"]
    # Pruning or cascading deletion of a CRD deletes every Agent in the cluster.
    assert sync["automated"]["prune"] is False
    assert not app["metadata"].get("finalizers")
    assert app["spec"]["source"]["path"] == "manifests/crds"


def test_operator_application_syncs_after_the_crds(argocd_docs: list[dict[str, Any]]) -> None:
    app = find(argocd_docs, "Application", "agentfleet-operator")
    assert int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) > -1
    assert app["spec"]["source"]["path"] == "manifests/base/operator"


def test_applications_point_at_existing_kustomizations_of_this_release(argocd_docs: list[dict[str, Any]]) -> None:
    paths = set()
    for app in (d for d in argocd_docs if d["kind"] == "Application"):
        source = app["spec"]["source"]
        assert source["repoURL"] == "https://github.com/agentfleet/agentfleet"
        assert source["targetRevision"] == f"v{VERSION}"
        assert (REPO / source["path"] / "kustomization.yaml").exists(), source["path"]
        paths.add(source["path"])
    # The two Applications must not both manage the CRDs (Argo CD's SharedResourceWarning).
    operator_kustomization = yaml.safe_load((MANIFESTS / "base" / "operator" / "kustomization.yaml").read_text())
    assert not any("crds" in r for r in operator_kustomization["resources"])
    assert paths == {"manifests/crds", "manifests/base/operator"}
