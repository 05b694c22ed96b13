"""Suite-wide: the reliability summary is written from the outcomes of the tests that break things on
purpose, so the document is produced by the test suite, never by hand. A full run writes it among the
run's artefacts (.artifacts/reliability.md, or AGENTFLEET_RELIABILITY_REPORT), so `make test` leaves
the tree clean; `make reliability-doc` copies a green run's summary to docs/reliability.md, the
committed one, on purpose."""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT = Path(os.environ.get("AGENTFLEET_RELIABILITY_REPORT") or ROOT / ".artifacts" / "reliability.md")

# family → node-id patterns (fnmatch) of the tests that prove it
FAMILIES: dict[str, tuple[str, ...]] = {
    "CRD admission: hand-written invalid specs are refused, naming the field, nothing stored": (
        "tests/integration/test_crds_admission.py::test_invalid_spec_is_refused_naming_the_field*",
    ),
    "CRD admission: fuzzed specs (hypothesis) are refused naming a changed field or valid, both seen; "
    "the operator survives them": ("tests/integration/test_crd_fuzz.py::*",),
    "Runtime API: bad, oversized and malformed requests get a JSON 4xx, never a 5xx": (
        "tests/integration/runtime/test_runtime_api.py::test_bad_and_oversized_input_is_a_json_4xx*",
        "tests/integration/runtime/test_runtime_api.py::test_chunked_oversized_body*",
        "tests/integration/runtime/test_runtime_api.py::test_unknown_route_and_method*",
        "tests/unit/runtime/test_runtime_perception.py::test_bad_requests_are_4xx_with_a_code*",
    ),
    "Runtime API fuzzed from its OpenAPI schema (schemathesis) and raw hypothesis bodies: no 5xx": (
        "tests/integration/runtime/test_runtime_fuzz.py::*",
    ),
    "Runtime config: malformed files are refused at start with the field named": (
        "tests/integration/runtime/test_runtime_process.py::test_malformed_config*",
        "tests/unit/runtime/test_runtime_config.py::*",
    ),
    "Runtime faults: LLM 429/500/hang are retried or time out with a clear error": (
        "tests/integration/runtime/test_runtime_api.py::test_llm_429*",
        "tests/integration/runtime/test_runtime_api.py::test_llm_500*",
        "tests/integration/runtime/test_runtime_faults.py::*hang*",
    ),
    "Runtime faults: a dead or misconfigured CRM opens the circuit and degrades the answer": (
        "tests/integration/runtime/test_runtime_tools.py::test_dead_crm*",
        "tests/integration/runtime/test_runtime_tools.py::test_wrong_credentials*",
        "tests/integration/runtime/test_runtime_tools.py::test_retries_do_not_hide*",
    ),
    "Runtime faults: Redis unreachable makes /readyz false and requests a 503 before the model is asked, "
    "nothing half-written": (
        "tests/integration/runtime/test_runtime_redis.py::test_unreachable_redis*",
        "tests/integration/runtime/test_runtime_faults.py::*redis_down*",
    ),
    "Runtime faults: Redis (AOF) restarted mid-conversation, the next turn still has the history": (
        "tests/integration/runtime/test_runtime_faults.py::*survive*",
    ),
    "Runtime faults: SIGTERM mid-stream finishes the in-flight stream": (
        "tests/integration/runtime/test_runtime_process.py::test_sigterm*",
    ),
    "Operator faults: killed mid-create, restarted, converges without duplicates": (
        "tests/integration/test_operator.py::test_operator_killed_mid_create*",
    ),
    "Operator faults: restart re-lists everything and writes nothing (also after a finished canary)": (
        "tests/integration/test_operator.py::test_no_op_resync*",
        "tests/integration/test_operator_faults.py::test_restart_after_a_finished_canary_writes_nothing",
    ),
    "Operator faults: the leader is killed and the standby takes over": ("tests/integration/test_operator_ha.py::*",),
    "Operator faults: SIGKILLed at seeded points of a 200-Agent create; one set of children each, no orphans": (
        "tests/integration/test_operator_faults.py::test_operator_killed_at_seeded_points_of_a_200_agent_create*",
    ),
    "Operator faults: SIGKILLed mid-canary (paused, starting, promoting); rollout state kept, promotion completes": (
        "tests/integration/test_operator_faults.py::test_operator_killed_during_a_canary*",
    ),
    "Control plane faults: kube-apiserver, or etcd and kube-apiserver, restarted mid-run; the operator converges": (
        "tests/integration/test_operator_faults.py::test_control_plane_restart_mid_run*",
    ),
    "API client: 429 retried honouring Retry-After, then a clear error; refused connections retried; "
    "409 on create means it exists; 403 not retried": ("tests/unit/test_kube_client_retries.py::*",),
    "Operator: deleted or hand-edited children are restored, foreign fields kept": (
        "tests/integration/test_operator.py::test_drift*",
        "tests/integration/test_operator.py::test_autoscaled_agent_leaves_replicas*",
    ),
    "Canary analysis: no data, too few requests or Prometheus down is inconclusive, never a pass": (
        "tests/integration/test_prometheus_analysis.py::*",
        "tests/integration/test_canary_e2e.py::*prometheus*",
    ),
    "Secrets: no value in operator logs, Events, statuses, ConfigMaps or runtime logs": (
        "tests/integration/test_secret_hygiene.py::*",
        "tests/integration/runtime/test_runtime_redis.py::test_pii_reaches_neither*",
        "tests/integration/runtime/test_runtime_tools.py::test_missing_secret_key_is_named_not_shown*",
    ),
    "Least privilege: exact ClusterRole rules, no wildcard, operator runs under it": (
        "tests/unit/test_manifests_render.py::test_cluster_role*",
        "tests/unit/test_manifests_render.py::test_every_rbac_rule*",
        "tests/unit/test_manifests_render.py::test_binding_grants*",
    ),
    "Real node: a rolling update and a canary's promote or abort under steady load lose no request": (
        "tests/e2e/test_traffic.py::test_rolling_update_under_steady_load_loses_no_request*",
        "tests/e2e/test_traffic.py::test_canary_share_is_the_reported_weight_and_finishing_loses_no_request*",
    ),
    "Real node: a runtime that cannot start (image missing, crash, OOM) is Ready=False with the pod's reason": (
        "tests/e2e/test_failures.py::*",
    ),
    "Real node: the operator in-cluster loses its leader pod and the standby reconciles the next change": (
        "tests/e2e/test_in_cluster.py::test_operator_runs_in_cluster*",
    ),
    "Real node: a canary answering 5xx is rolled back on the error ratio an in-cluster Prometheus scraped": (
        "tests/e2e/test_analysis.py::test_canary_answering_5xx*",
    ),
    "Pod Security: restricted is enforced in test namespaces and agent/Redis pods pass it": (
        "tests/integration/test_operator.py::test_*pod_security*",
    ),
}

_outcomes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_seen_dirs: set[str] = set()


def _family(nodeid: str) -> str | None:
    for family, patterns in FAMILIES.items():
        if any(fnmatch.fnmatch(nodeid, pattern) for pattern in patterns):
            return family
    return None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        _seen_dirs.add(item.nodeid.split("/")[1] if item.nodeid.startswith("tests/") else "")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    family = _family(report.nodeid)
    if family is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[family][report.outcome] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only a run of the whole suite rewrites the summary; a single file's run would make it partial.
    if not {"unit", "integration"} <= _seen_dirs or os.environ.get("AGENTFLEET_NO_REPORT") == "1":
        return
    lines = [
        "# Reliability summary",
        "",
        "Written by the test suite (tests/conftest.py) at the end of its last full run; do not edit.",
        f"Run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, exit status {exitstatus}.",
        "",
        "| Fault or bad-input family | cases run | passed | failed | skipped |",
        "|---|---|---|---|---|",
    ]
    for family in FAMILIES:
        counts = _outcomes.get(family, {})
        run = sum(counts.values())
        lines.append(
            f"| {family} | {run} | {counts.get('passed', 0)} | {counts.get('failed', 0)} | {counts.get('skipped', 0)} |"
        )
    lines += [
        "",
        "A case is one test (one parametrization); hypothesis tests count once but run many examples "
        "(see each test's settings).",
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")
