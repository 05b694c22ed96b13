"""Every metric the alerts and the dashboard query is one the real programs export.

tests/unit/test_manifests_render.py checks the PromQL against a list of names it holds; this test holds
no list. It scrapes /metrics of the running operator and of a real runtime process and requires each
name in manifests/monitoring (alert expressions, dashboard queries and variables) to be a series one of
them exposes, with the suffix its type gives it (_total for counters, _bucket/_sum/_count for
histograms). The unit tier's list is checked against the same scrape, so it cannot drift either.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.runtime import RuntimeProcess, rules_config
from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import apply, ready, rules_agent, wait_for
from tests.unit.test_manifests_render import KNOWN_LABEL_NAMES, KNOWN_METRICS, METRIC_WORD

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
MONITORING = Path(__file__).resolve().parents[2] / "manifests" / "monitoring"
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "summary": ("_sum", "_count", ""),
}


def queried_names() -> dict[str, set[str]]:
    """Metric name → where it is queried (alert name, dashboard panel or variable)."""
    used: dict[str, set[str]] = {}

    def note(text: str, where: str) -> None:
        for name in METRIC_WORD.findall(text):
            if name not in KNOWN_LABEL_NAMES:
                used.setdefault(name, set()).add(where)

    rules = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            note(rule["expr"], f"alert {rule.get('alert') or rule.get('record')}")
    for path in sorted((MONITORING / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                note(target["expr"], f"panel {panel['title']!r}")
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                definition = variable["definition"]
                note(
                    definition if isinstance(definition, str) else json.dumps(definition),
                    f"variable {variable['name']}",
                )
    return used


def exposed_series(text: str) -> dict[str, str]:
    """Series name → type, for every family an exposition declares, sampled yet or not."""
    series: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SERIES_SUFFIXES.get(family.type, ("",)):
            series[family.name + suffix] = family.type
    return series


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[RuntimeProcess]:
    process = RuntimeProcess(rules_config(), tmp_path).start()
    try:
        yield process
    finally:
        process.stop()


def test_alerts_and_dashboard_query_only_exported_series(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, runtime: RuntimeProcess
) -> None:
    # Some traffic through both, so the scrape is of programs at work, not only of their declarations.
    apply(kubectl, namespace, rules_agent("bot"))
    wait_for("Ready", lambda: ready(kubectl, "bot", namespace))
    answer = httpx.post(f"{runtime.url}/v1/sessions/s1/messages", json={"content": "hello"}, timeout=10)
    assert answer.status_code == 200, answer.text

    operator_series = exposed_series(operator.metrics())
    runtime_series = exposed_series(httpx.get(f"{runtime.url}/metrics", timeout=5).text)
    exposed = operator_series | runtime_series
    assert "agentfleet_reconcile_total" in operator_series and "agent_requests_total" in runtime_series

    used = queried_names()
    assert len(used) >= 10, f"the monitoring manifests query suspiciously few of our metrics: {sorted(used)}"
    missing = {name: sorted(where) for name, where in used.items() if name not in exposed}
    assert not missing, f"queried but exported by neither the operator nor the runtime: {missing}"

    # The unit tier's list: each entry is an exported series or, for histograms, the family name.
    families = {
        name.removesuffix(suffix)
        for name, kind in exposed.items()
        for suffix in SERIES_SUFFIXES[kind]
        if suffix and name.endswith(suffix)
    }
    stale = sorted(name for name in KNOWN_METRICS if name not in exposed and name not in families)
    assert not stale, f"tests/unit/test_manifests_render.py lists metrics nobody exports: {stale}"


def test_exposition_parsing_tells_the_types_apart() -> None:
    # The check above is only as good as this mapping: a counter queried without _total, or a histogram
    # queried bare, must not count as exported.
    text = (
        "# HELP a_total x\n# TYPE a_total counter\n# HELP b_seconds x\n# TYPE b_seconds histogram\n"
        "# HELP c x\n# TYPE c gauge\nc 1\n"
    )
    series = exposed_series(text)
    assert set(series) == {"a_total", "b_seconds_bucket", "b_seconds_sum", "b_seconds_count", "c"}
