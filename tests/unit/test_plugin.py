"""`kubectl agentfleet` without a cluster: rendering of status and history for the states users meet
(canary mid-analysis, paused, aborted, rolling update, no status yet), intent values and patches,
argument parsing and exit codes."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from agentfleet_operator.api.agent import Agent
from agentfleet_operator.cli import plugin
from agentfleet_operator.cli.plugin import (
    build_parser,
    intent_outcome,
    intent_patch,
    intent_value,
    main,
)
from agentfleet_operator.cli.render import (
    age,
    describe_step,
    pending_intents,
    render_history,
    render_status,
    step_weights,
    table,
)
from agentfleet_operator.rollout.state_machine import _promote_kind, intents_from_annotations

from tests.unit.samples import load_sample

NOW = datetime(2025, 3, 4, 10, 5, 0, tzinfo=UTC)
STABLE, CANARY = "5d41402a", "9f86d081"


def _agent(status: dict[str, Any] | None, **meta: Any) -> dict[str, Any]:
    """The shipped support-bot sample (5 canary steps) as the API server returns it, with a status."""
    agent = load_sample("support-bot-agent.yaml")
    agent["metadata"].update({"generation": 4, "uid": "0b1c", "creationTimestamp": "2025-03-01T08:00:00Z"}, **meta)
    if status is not None:
        agent["status"] = status
    # Everything rendered must be something the API model accepts, so the fixtures stay realistic.
    Agent.model_validate(agent)
    return agent


def _conditions(ready: str, reason: str, message: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "Ready",
            "status": ready,
            "reason": reason,
            "message": message,
            "lastTransitionTime": "2025-03-04T10:00:00Z",
            "observedGeneration": 4,
        },
        {
            "type": "RolloutHealthy",
            "status": "True",
            "reason": "CanaryProgressing",
            "message": "canary on its way",
            "lastTransitionTime": "2025-03-04T10:00:00Z",
            "observedGeneration": 4,
        },
    ]


def _measurement(
    time: str, metric: str, value: str, stable: str, threshold: str, verdict: str, message: str = ""
) -> dict[str, Any]:
    return {
        "time": time,
        "metric": metric,
        "query": f"sum(rate(agent_requests_total[30s])) # {metric}",
        "value": value,
        "stableValue": stable,
        "threshold": threshold,
        "verdict": verdict,
        "message": message,
    }


def _base_status(**rollout: Any) -> dict[str, Any]:
    return {
        "observedGeneration": 4,
        "phase": "Progressing",
        "conditions": _conditions("True", "CanaryInProgress", "stable 2/2 ready; canary at step 3/5"),
        "replicas": 2,
        "readyReplicas": 2,
        "ready": "2/2",
        "selector": "agentfleet.dev/agent=support-bot",
        "endpoint": "http://support-bot.agentfleet-demo.svc:8080",
        "revision": {"stable": STABLE, "canary": CANARY},
        "revisionHistory": [CANARY, STABLE, "1a2b3c4d"],
        "rollout": {"phase": "Progressing", "step": 0, "weight": 0, "message": "", "analysis": []} | rollout,
    }


MID_ANALYSIS = _base_status(
    step=2,
    weight=10,
    actualWeight=10,
    stepStartedAt="2025-03-04T10:04:00Z",
    startedAt="2025-03-04T10:02:00Z",
    message="step 3/5: analysis running",
    analysis=[
        _measurement("2025-03-04T10:04:30Z", "errorRatio", "0.0120", "0.0100", "0.05", "Passed"),
        _measurement("2025-03-04T10:04:30Z", "latencyP95", "2.4100", "1.1000", "2", "Failed", "p95 2.41s above 2s"),
    ],
    failures=1,
)
PAUSED = _base_status(
    phase="Paused",
    step=2,
    weight=10,
    actualWeight=10,
    stepStartedAt="2025-03-04T10:01:00Z",
    message="step 3/5: 3 inconclusive measurements in a row; paused for a human (promote or abort)",
    analysis=[
        _measurement(
            f"2025-03-04T10:0{i}:00Z",
            "errorRatio",
            "",
            "0.0100",
            "0.05",
            "Inconclusive",
            "4 canary requests < minRequests 20",
        )
        for i in (2, 3, 4)
    ],
    inconclusive=3,
) | {"phase": "Paused"}
ABORTED = _base_status(
    phase="Aborted",
    step=2,
    weight=0,
    actualWeight=0,
    abortedRevision=CANARY,
    message=f"rolled back {CANARY}: 2 failed measurements; stable {STABLE} keeps serving "
    "(retry with agentfleet.dev/retry or change the spec)",
    analysis=[
        _measurement(
            "2025-03-04T10:03:00Z", "errorRatio", "0.2100", "0.0100", "0.05", "Failed", "error ratio 0.21 above 0.05"
        )
    ]
    * 2,
    failures=2,
    handledIntents={"promote": "step:20250304T100000Z-aa11bb22"},
) | {
    "phase": "Degraded",
    "revision": {"stable": STABLE, "canary": ""},
    "conditions": _conditions("True", "RolledBack", f"canary {CANARY} rolled back; stable {STABLE} serving"),
}


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _line(text: str, prefix: str) -> str:
    return next(line for line in _lines(text) if line.lstrip().startswith(prefix))


# ------------------------------------------------------------------------------------------- status


def test_status_mid_analysis_shows_health_revisions_marked_step_and_analysis_table() -> None:
    out = render_status(_agent(MID_ANALYSIS), now=NOW)
    assert _line(out, "Agent:").split() == ["Agent:", "agentfleet-demo/support-bot"]
    assert _line(out, "Phase:").split() == ["Phase:", "Progressing"]
    assert _line(out, "Ready:") == "Ready:        True (CanaryInProgress): stable 2/2 ready; canary at step 3/5"
    assert _line(out, "Replicas:") == "Replicas:     2/2 ready (autoscaling 2-10)"
    assert _line(out, "Stable:").split() == ["Stable:", STABLE]
    assert _line(out, "Canary:").split() == ["Canary:", CANARY]
    assert _line(out, "Rollout:") == "Rollout:      Canary, phase Progressing"
    assert _line(out, "Step:") == "  Step:       3/5 analysis, started 2025-03-04T10:04:00Z (1m ago)"
    assert _line(out, "Weight:") == "  Weight:     target 10%, actual 10%"
    assert _line(out, "Message:").endswith("step 3/5: analysis running")
    assert "1 failed (abort at 2), 0 inconclusive in a row (pause at 3)" in _line(out, "Verdicts:")

    # Steps: every step of the spec in order, the weight in effect at it, the marker on the current one only.
    lines = _lines(out)
    header = lines.index(next(line for line in lines if "STEP" in line and "ACTION" in line))
    rows = [line.split() for line in lines[header + 1 : header + 6]]
    assert rows == [
        ["1", "setWeight", "10", "10%"],
        ["2", "pause", "60s", "10%"],
        [">", "3", "analysis", "10%"],
        ["4", "setWeight", "50", "50%"],
        ["5", "analysis", "50%"],
    ]

    # Analysis: columns in the documented order, one row per measurement, values as measured.
    analysis = lines[lines.index("Analysis (oldest first):") + 1 :]
    assert analysis[0].split() == ["TIME", "METRIC", "VALUE", "STABLE", "THRESHOLD", "VERDICT", "MESSAGE"]
    assert (
        analysis[1].split()[:9]
        == ["2025-03-04T10:04:30Z", "(30s", "ago)", "errorRatio", "0.0120", "0.0100", "0.05", "Passed"][:9]
    )
    assert analysis[2].split()[3:] == ["latencyP95", "2.4100", "1.1000", "2", "Failed", "p95", "2.41s", "above", "2s"]
    # Columns line up: VERDICT starts at the same offset in the header and every row.
    offset = analysis[0].index("VERDICT")
    assert analysis[1][offset:].startswith("Passed") and analysis[2][offset:].startswith("Failed")
    assert "skip ahead with `kubectl agentfleet promote support-bot`" in _line(out, "Hint:")
    assert "Conditions:" in lines and any(
        line.split()[:3] == ["RolloutHealthy", "True", "CanaryProgressing"] for line in lines
    )


def test_status_paused_for_a_human_says_how_to_continue() -> None:
    out = render_status(_agent(PAUSED), now=NOW)
    assert _line(out, "Rollout:") == "Rollout:      Canary, phase Paused"
    assert "paused for a human (promote or abort)" in _line(out, "Message:")
    assert "0 failed (abort at 2), 3 inconclusive in a row (pause at 3)" in _line(out, "Verdicts:")
    assert _line(out, ">").split() == [">", "3", "analysis", "10%"]
    hint = _line(out, "Hint:")
    assert "kubectl agentfleet promote support-bot" in hint and "kubectl agentfleet abort support-bot" in hint
    rows = [line for line in _lines(out) if "Inconclusive" in line]
    assert len(rows) == 3 and all("4 canary requests < minRequests 20" in row for row in rows)
    # No canary value was measured: shown as "-", not as an empty gap that shifts the columns.
    assert rows[0].split()[3:5] == ["errorRatio", "-"]


def test_status_aborted_shows_rollback_and_retry_hint() -> None:
    out = render_status(_agent(ABORTED), now=NOW)
    assert _line(out, "Phase:").split() == ["Phase:", "Degraded"]
    assert _line(out, "Canary:").split() == ["Canary:", "(none)"]
    assert _line(out, "Rollout:") == "Rollout:      Canary, phase Aborted"
    assert _line(out, "Aborted:") == f"  Aborted:    revision {CANARY} (rolled back)"
    assert _line(out, "Stopped at:") == "  Stopped at: step 3/5 analysis"
    assert "Step:" not in out
    assert _line(out, "Weight:") == "  Weight:     target 0%, actual 0%"
    assert _line(out, ">").split() == [">", "3", "analysis", "10%"]  # where the abort stopped it
    assert "kubectl agentfleet retry support-bot" in _line(out, "Hint:")
    assert "Pending intents" not in out  # the promote it carries was handled


def test_status_lists_intents_the_operator_has_not_acted_upon() -> None:
    annotations = {
        "agentfleet.dev/promote": "full:20250304T100400Z-cc33dd44",
        "agentfleet.dev/abort": "20250304T090000Z-0000aaaa",
        "argocd.argoproj.io/tracking-id": "x",
    }
    status = copy.deepcopy(PAUSED)
    status["rollout"]["handledIntents"] = {"abort": "20250304T090000Z-0000aaaa"}
    agent = _agent(status, annotations=annotations)
    assert pending_intents(agent) == {"agentfleet.dev/promote": "full:20250304T100400Z-cc33dd44"}
    out = render_status(agent, now=NOW)
    assert "Pending intents (set, not acted upon by the operator yet):" in out
    assert "  agentfleet.dev/promote=full:20250304T100400Z-cc33dd44" in _lines(out)
    assert "agentfleet.dev/abort=" not in out


def test_status_rolling_update_says_so_and_has_no_steps() -> None:
    agent = _agent(None)
    agent["spec"]["rollout"] = {"strategy": "RollingUpdate"}
    agent["spec"].pop("autoscaling")
    agent["spec"]["replicas"] = 3
    agent["status"] = _base_status() | {
        "phase": "Progressing",
        "ready": "1/3",
        "readyReplicas": 1,
        "replicas": 3,
        "revision": {"stable": CANARY, "canary": ""},
        "observedGeneration": 3,
        "conditions": _conditions("False", "DeploymentUnavailable", "1 of 3 pods ready"),
        "rollout": {"phase": "Idle", "step": 0, "weight": 0, "message": f"rolling update to revision {CANARY}"},
    }
    Agent.model_validate(agent)
    out = render_status(agent, now=NOW)
    assert _line(out, "Rollout:") == (
        "Rollout:      RollingUpdate: new revisions replace the pods in place (no canary steps)"
    )
    assert _line(out, "Message:").endswith(f"rolling update to revision {CANARY}")
    assert _line(out, "Ready:") == "Ready:        False (DeploymentUnavailable): 1 of 3 pods ready"
    assert _line(out, "Replicas:") == "Replicas:     1/3 ready (spec.replicas 3)"
    assert _line(out, "Observed:") == "Observed:     generation 3, spec is at 4: the operator has not caught up"
    assert "STEP" not in out and "Weight:" not in out and "Hint:" not in out and "Analysis" not in out


def test_status_without_status_yet() -> None:
    out = render_status(_agent(None), now=NOW)
    assert _line(out, "Status:").startswith("Status:       not reported yet")
    assert _line(out, "Stable:").split() == ["Stable:", "-"]
    assert _line(out, "Rollout:") == "Rollout:      Canary, phase Idle"
    # The steps are still listed (from the spec) but no step is current.
    assert "STEP" in out and not any(line.lstrip().startswith(">") for line in _lines(out))
    assert "Conditions:" not in out and "Analysis" not in out


def test_status_survives_odd_status_written_by_hand() -> None:
    # Unknown fields, a step past the end, nulls and wrong types: render, never crash.
    agent = _agent(None)
    agent["status"] = {
        "phase": None,
        "conditions": [{"type": "Ready"}],
        "revision": None,
        "rollout": {"phase": "Progressing", "step": 99, "analysis": [{"metric": "x"}], "extra": 1},
    }
    out = render_status(agent)
    assert _line(out, "Ready:") == "Ready:        Unknown"
    assert "Step:" not in out and not any(line.lstrip().startswith(">") for line in _lines(out))
    assert re.search(r"^\s+-\s+x\s+-\s+-\s+-\s+-$", out, re.M)


# ------------------------------------------------------------------------------------------- history


def _config_map(revision: str, created: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "immutable": True,
        "metadata": {
            "name": f"support-bot-config-{revision}",
            "namespace": "agentfleet-demo",
            "creationTimestamp": created,
            "labels": {"agentfleet.dev/agent": "support-bot", "agentfleet.dev/revision": revision},
            "annotations": {"agentfleet.dev/image": image, "agentfleet.dev/secret-mounts": "{}"},
        },
        "data": {"config.json": "{}"},
    }


def test_history_newest_first_with_roles_and_config_maps() -> None:
    maps = [
        _config_map(STABLE, "2025-03-03T09:00:00Z", "ghcr.io/acme/agentfleet-runtime:0.1.0"),
        _config_map(CANARY, "2025-03-04T10:02:00Z", "ghcr.io/acme/agentfleet-runtime:0.2.0"),
        _config_map("77777777", "2025-02-01T09:00:00Z", "ghcr.io/acme/agentfleet-runtime:0.0.9"),
    ]
    out = render_history(_agent(MID_ANALYSIS), maps, now=NOW)
    lines = _lines(out)
    assert lines[0] == "Revisions of Agent agentfleet-demo/support-bot (newest first):"
    assert lines[1].split() == ["REVISION", "ROLE", "CONFIGMAP", "EXISTS", "CREATED", "IMAGE"]
    assert lines[2].split() == [
        CANARY,
        "canary",
        f"support-bot-config-{CANARY}",
        "yes",
        "2025-03-04T10:02:00Z",
        "(3m",
        "ago)",
        "ghcr.io/acme/agentfleet-runtime:0.2.0",
    ]
    assert lines[3].split() == [
        STABLE,
        "stable",
        f"support-bot-config-{STABLE}",
        "yes",
        "2025-03-03T09:00:00Z",
        "(1d",
        "ago)",
        "ghcr.io/acme/agentfleet-runtime:0.1.0",
    ]
    assert lines[4].split() == ["1a2b3c4d", "-", "support-bot-config-1a2b3c4d", "no", "(deleted)", "-", "-"]
    assert "Revision ConfigMaps not listed in status.revisionHistory:" in lines
    assert lines[-1].strip() == "support-bot-config-77777777"


def test_history_marks_the_rolled_back_revision_and_handles_no_status() -> None:
    out = render_history(_agent(ABORTED), [_config_map(CANARY, "2025-03-04T10:02:00Z", "img:2")], now=NOW)
    row = next(line for line in _lines(out) if line.strip().startswith(CANARY))
    assert row.split()[:4] == [CANARY, "rolled", "back", f"support-bot-config-{CANARY}"]
    assert "none recorded yet" in render_history(_agent(None), [])


# ------------------------------------------------------------------------------------------- helpers


def test_steps_weights_and_ages() -> None:
    steps = [{"pause": {}}, {"setWeight": 20}, {"analysis": {}}, {"pause": {"duration": "5m"}}, {"setWeight": 60}]
    assert [describe_step(s) for s in steps] == [
        "pause (until promoted)",
        "setWeight 20",
        "analysis",
        "pause 5m",
        "setWeight 60",
    ]
    assert step_weights(steps) == [0, 20, 20, 20, 60]
    assert [
        age(t, NOW)
        for t in (
            "2025-03-04T10:04:55Z",
            "2025-03-04T10:01:50Z",
            "2025-03-04T09:40:00Z",
            "2025-03-04T07:05:00Z",
            "2025-03-01T10:05:00Z",
        )
    ] == ["5s", "3m10s", "25m", "3h", "3d"]
    assert age("garbage", NOW) == "" and age("2025-03-04T10:04:55Z", None) == ""
    assert table(["A", "LONGER"], [["xxxx", "1"], ["y", ""]]) == ["  A     LONGER", "  xxxx  1", "  y"]


# ------------------------------------------------------------------------------------------- intents


def test_intent_values_are_distinct_and_read_by_the_state_machine() -> None:
    values = {intent_value("promote") for _ in range(50)}
    assert len(values) == 50  # two promotes in the same second are still two intents
    step, full = intent_value("promote", now=NOW), intent_value("promote", full=True, now=NOW)
    assert re.fullmatch(r"step:20250304T100500Z-[0-9a-f]{8}", step)
    assert re.fullmatch(r"full:20250304T100500Z-[0-9a-f]{8}", full)
    assert _promote_kind(step) == "step" and _promote_kind(full) == "full"
    assert re.fullmatch(r"20250304T100500Z-[0-9a-f]{8}", intent_value("abort", now=NOW))
    with pytest.raises(ValueError):
        intent_value("pause")


def test_intent_patch_touches_only_annotations_the_operator_reads() -> None:
    for kind in ("promote", "abort", "retry"):
        patch = intent_patch(kind, "v1")
        assert patch == {"metadata": {"annotations": {f"agentfleet.dev/{kind}": "v1"}}}
        assert intents_from_annotations(patch["metadata"]["annotations"]) == {kind: "v1"}


def test_intent_outcome_warns_when_the_intent_would_be_ignored() -> None:
    what, warning = intent_outcome(_agent(PAUSED), "promote")
    assert what == f"end step 3/5 of canary {CANARY} and go on with the next" and warning is None
    what, warning = intent_outcome(_agent(MID_ANALYSIS), "promote", full=True)
    assert what.startswith(f"promote canary {CANARY} to stable now") and warning is None
    assert intent_outcome(_agent(MID_ANALYSIS), "abort") == (
        f"roll back canary {CANARY}; stable {STABLE} keeps serving",
        None,
    )
    assert intent_outcome(_agent(PAUSED), "retry") == (
        "start an aborted canary again from step 1",
        "retry applies only to an aborted rollout (rollout phase Paused): it will be ignored",
    )

    what, warning = intent_outcome(_agent(ABORTED), "retry")
    assert what == f"start the canary of revision {CANARY} again from step 1" and warning is None
    assert "no canary is in progress" in str(intent_outcome(_agent(ABORTED), "promote")[1])
    assert "no canary is in progress" in str(intent_outcome(_agent(ABORTED), "abort")[1])
    assert "no status yet" in str(intent_outcome(_agent(None), "abort")[1])


# ------------------------------------------------------------------------------------------- CLI


def test_flags_work_before_and_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["-n", "ns1", "--context", "c", "--kubeconfig", "k", "promote", "a", "--full"])
    after = parser.parse_args(["promote", "a", "--full", "-n", "ns1", "--context", "c", "--kubeconfig", "k"])
    for args in (before, after):
        assert (args.command, args.agent, args.full, args.namespace, args.context, args.kubeconfig) == (
            "promote",
            "a",
            True,
            "ns1",
            "c",
            "k",
        )
    plain = parser.parse_args(["status", "a"])
    assert (plain.namespace, plain.context, plain.kubeconfig) == (None, None, None)


@pytest.mark.parametrize("argv", [[], ["status"], ["bogus", "a"], ["status", "a", "--full"], ["promote"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["status", "promote", "abort", "retry", "history"])
def test_help_for_each_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kubectl agentfleet {command}") and "--namespace" in out


def test_bad_kubeconfig_is_a_clear_error_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    assert main(["--kubeconfig", str(tmp_path / "missing"), "status", "a"]) == 1
    assert "cannot load the kubeconfig" in capsys.readouterr().err


class _FakeCluster:
    """Stands in for plugin.Cluster: records patches, serves one Agent."""

    def __init__(self, agent: dict[str, Any] | None) -> None:
        self.agent, self.namespace, self.patches = agent, "agentfleet-demo", []

    def get_agent(self, name: str) -> dict[str, Any]:
        if self.agent is None:
            raise plugin.PluginError(f'Agent "{name}" not found in namespace "{self.namespace}"')
        return self.agent

    def patch_agent(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((name, patch))
        return self.agent or {}


def _with_fake(monkeypatch: pytest.MonkeyPatch, agent: dict[str, Any] | None) -> _FakeCluster:
    fake = _FakeCluster(agent)
    monkeypatch.setattr(plugin, "Cluster", lambda *args: fake)
    return fake


def test_promote_full_patches_the_annotation_and_says_what_happens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _with_fake(monkeypatch, _agent(MID_ANALYSIS))
    assert main(["promote", "support-bot", "--full"]) == 0
    [(name, patch)] = fake.patches
    value = patch["metadata"]["annotations"]["agentfleet.dev/promote"]
    assert name == "support-bot" and value.startswith("full:") and list(patch) == ["metadata"]
    out, err = capsys.readouterr()
    assert f"annotated: agentfleet.dev/promote={value}" in out and "acts on this value once" in out
    assert err == ""


def test_abort_without_a_canary_warns_but_still_sets_the_intent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _with_fake(monkeypatch, _agent(ABORTED))
    assert main(["abort", "support-bot"]) == 0
    assert list(fake.patches[0][1]["metadata"]["annotations"]) == ["agentfleet.dev/abort"]
    assert capsys.readouterr().err.startswith("warning: no canary is in progress")


def test_not_found_exits_1_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _with_fake(monkeypatch, None)
    assert main(["retry", "x"]) == 1
    assert capsys.readouterr().err == 'error: Agent "x" not found in namespace "agentfleet-demo"\n'
    assert fake.patches == []  # nothing written for an Agent that does not exist


def test_api_errors_are_summarised() -> None:
    from kubernetes.client.exceptions import ApiException

    def err(status: int, body: str) -> ApiException:
        exc = ApiException(status=status, reason="Reason")
        exc.body = body
        return exc

    named = '{"kind":"Status","message":"agents.agentfleet.dev \\"x\\" not found","details":{"name":"x"}}'
    assert plugin._api_error(err(404, named), "NF") == "NF"
    unnamed = '{"kind":"Status","message":"the server could not find the requested resource","details":{}}'
    assert "are the agentfleet CRDs installed?" in plugin._api_error(err(404, unnamed), "NF")
    assert plugin._api_error(err(403, '{"message":"agents is forbidden"}'), "NF") == "not allowed: agents is forbidden"
    assert plugin._api_error(err(500, "not json"), "NF") == "API error 500: Reason"
