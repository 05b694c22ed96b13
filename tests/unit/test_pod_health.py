"""pod_failure: the kubelet's reason for pods that cannot start, from the container statuses it writes.

The shapes are the kubelet's (v1.33, containerd 1.6), trimmed to the fields it always writes; the
OOMKilled one is copied from the real node of the e2e tier (an Agent with a 16Mi memory limit)."""

from __future__ import annotations

from typing import Any

import pytest
from agentfleet_operator.builders.pod_health import MESSAGE_LIMIT, pod_failure

REVISION = "5d41402abc"
PULL_MESSAGE = (
    'failed to pull and unpack image "ghcr.io/agentfleet/does-not-exist:0": failed to resolve reference '
    '"ghcr.io/agentfleet/does-not-exist:0": failed to do request: Head '
    '"https://ghcr.io/v2/agentfleet/does-not-exist/manifests/0": dial tcp 127.0.0.1:9: connect: '
    "connection refused"
)
BACK_OFF = "back-off 40s restarting failed container=agent pod=bot-7d9c5b6f4-x2x9q_support(3c1d6a52-9f0e-4b8e-9d0a)"


def terminated(reason: str, code: int) -> dict[str, Any]:
    return {
        "terminated": {
            "containerID": "containerd://1bb63ee5",
            "exitCode": code,
            "reason": reason,
            "startedAt": "2026-12-01T11:23:04Z",
            "finishedAt": "2026-12-01T11:23:04Z",
        }
    }


def container(
    state: dict[str, Any],
    *,
    last: dict[str, Any] | None = None,
    restarts: int = 0,
    ready: bool = False,
    name: str = "agent",
) -> dict[str, Any]:
    return {
        "name": name,
        "image": "localhost/agentfleet-runtime:e4131eb755d0",
        "imageID": "",
        "ready": ready,
        "started": ready,
        "restartCount": restarts,
        "state": state,
        "lastState": last or {},
    }


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


RUNNING = {"running": {"startedAt": "2026-12-01T11:23:10Z"}}


def pod(
    *containers: dict[str, Any],
    name: str = "bot-7d9c5b6f4-x2x9q",
    track: str = "stable",
    revision: str = REVISION,
    phase: str = "Pending",
    deleting: bool = False,
    init: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "support",
        "labels": {"agentfleet.dev/agent": "bot", "agentfleet.dev/track": track, "agentfleet.dev/revision": revision},
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T11:24:00Z"
    status: dict[str, Any] = {"phase": phase, "containerStatuses": list(containers)}
    if init is not None:
        status["initContainerStatuses"] = init
    return {"metadata": meta, "status": status}


FAILING = [
    pytest.param(
        container(waiting("ImagePullBackOff", 'Back-off pulling image "ghcr.io/agentfleet/does-not-exist:0"')),
        "ImagePullBackOff",
        'Back-off pulling image "ghcr.io/agentfleet/does-not-exist:0"',
        id="pull-backoff",
    ),
    pytest.param(
        container(waiting("ErrImagePull", PULL_MESSAGE)),
        "ErrImagePull",
        'failed to pull and unpack image "ghcr.io/agentfleet/does-not-exist:0"',
        id="pull-error",
    ),
    pytest.param(
        container(waiting("CrashLoopBackOff", BACK_OFF), last=terminated("Error", 2), restarts=3),
        "CrashLoopBackOff",
        "Error, exit code 2, restarted 3 time(s); back-off 40s",
        id="crash-loop",
    ),
    pytest.param(
        container(waiting("CrashLoopBackOff", BACK_OFF), last=terminated("OOMKilled", 137), restarts=4),
        "OOMKilled",
        "OOMKilled, exit code 137, restarted 4 time(s)",
        id="oom-loop",
    ),
    pytest.param(
        container(waiting("CrashLoopBackOff", BACK_OFF), last=terminated("StartError", 128), restarts=2),
        "CrashLoopBackOff",
        "StartError, exit code 128",
        id="start-error-loop",
    ),
    pytest.param(
        container(waiting("CreateContainerConfigError", 'secret "llm-key" not found')),
        "CreateContainerConfigError",
        'secret "llm-key" not found',
        id="config-error",
    ),
    pytest.param(
        container(
            waiting(
                "InvalidImageName",
                'Failed to apply default image tag "Bad:Image": couldn\'t '
                'parse image name "Bad:Image": invalid reference format',
            )
        ),
        "InvalidImageName",
        "invalid reference format",
        id="invalid-image",
    ),
    pytest.param(
        container(
            waiting(
                "RunContainerError",
                'failed to create containerd task: exec: "agentfleet-runtime"'
                ": executable file not found in $PATH: unknown",
            )
        ),
        "RunContainerError",
        "executable file not found",
        id="run-error",
    ),
    pytest.param(
        container(waiting("CreateContainerError", "context deadline exceeded")),
        "CreateContainerError",
        "context deadline exceeded",
        id="create-error",
    ),
    # Between two back-offs: terminated for a moment, then running again (not ready) until the next exit.
    pytest.param(
        container(terminated("OOMKilled", 137), restarts=1),
        "OOMKilled",
        "OOMKilled, exit code 137, restarted 1 time(s)",
        id="oom-terminated-now",
    ),
    pytest.param(
        container(terminated("Error", 1), restarts=0),
        "CrashLoopBackOff",
        "Error, exit code 1, restarted 0 time(s)",
        id="first-exit",
    ),
    pytest.param(
        container(RUNNING, last=terminated("Error", 2), restarts=2),
        "CrashLoopBackOff",
        "Error, exit code 2, restarted 2 time(s); running again, not ready",
        id="running-between-crashes",
    ),
]


@pytest.mark.parametrize(("status", "reason", "detail"), FAILING)
def test_a_container_that_cannot_start_gives_its_reason(status: dict[str, Any], reason: str, detail: str) -> None:
    failure = pod_failure([pod(status)], "stable", REVISION)
    assert failure is not None
    assert failure.reason == reason
    assert (failure.pod, failure.container) == ("bot-7d9c5b6f4-x2x9q", "agent")
    assert failure.message.startswith(f"pod bot-7d9c5b6f4-x2x9q container agent: {reason}")
    assert detail in failure.message
    assert len(failure.message) <= MESSAGE_LIMIT and "\n" not in failure.message
    assert failure.reason.isalnum() and failure.reason[0].isupper()  # a condition reason: one CamelCase word


HEALTHY_OR_NOT_YET = [
    pytest.param(pod(container(waiting("ContainerCreating"))), id="creating"),
    pytest.param(pod(container(waiting("PodInitializing"))), id="initializing"),
    pytest.param(pod(), id="no-status-yet"),
    pytest.param(pod(container(RUNNING), phase="Running"), id="starting-not-ready-yet"),
    pytest.param(pod(container(RUNNING, ready=True), phase="Running"), id="ready"),
    # It was OOM-killed once and runs ready now: nothing to report.
    pytest.param(
        pod(container(RUNNING, last=terminated("OOMKilled", 137), restarts=1, ready=True), phase="Running"),
        id="recovered",
    ),
    # A clean exit restarted by the kubelet is not a crash while it runs; a loop of them shows as CrashLoopBackOff.
    pytest.param(
        pod(container(RUNNING, last=terminated("Completed", 0), restarts=1), phase="Running"),
        id="restarted-after-clean-exit",
    ),
    pytest.param(
        pod(container(waiting("CrashLoopBackOff", BACK_OFF), last=terminated("Error", 2), restarts=3), deleting=True),
        id="being-deleted",
    ),
    pytest.param(
        pod(
            container(waiting("CrashLoopBackOff", BACK_OFF), last=terminated("Error", 2), restarts=3),
            revision="0ldrevision",
        ),
        id="other-revision",
    ),
    pytest.param(pod(container(waiting("ImagePullBackOff")), track="canary"), id="other-track"),
    pytest.param(pod(container(terminated("Error", 137)), phase="Failed"), id="evicted"),
    pytest.param(
        pod(container(waiting("PodInitializing")), init=[container(terminated("Completed", 0), name="init")]),
        id="init-done",
    ),
]


@pytest.mark.parametrize("one", HEALTHY_OR_NOT_YET)
def test_pods_that_start_or_do_not_count_report_nothing(one: dict[str, Any]) -> None:
    assert pod_failure([one], "stable", REVISION) is None


def test_a_failing_init_container_is_named() -> None:
    failing_init = container(
        waiting("CrashLoopBackOff", BACK_OFF), last=terminated("Error", 1), restarts=2, name="migrate"
    )
    failure = pod_failure([pod(container(waiting("PodInitializing")), init=[failing_init])], "stable", REVISION)
    assert failure is not None and (failure.reason, failure.container) == ("CrashLoopBackOff", "migrate")


def test_the_canary_track_is_read_apart_from_the_stable_one() -> None:
    pods = [
        pod(container(RUNNING, ready=True), phase="Running"),
        pod(container(waiting("ErrImagePull", PULL_MESSAGE)), name="bot-canary-5f-abcde", track="canary"),
    ]
    assert pod_failure(pods, "stable", REVISION) is None
    canary = pod_failure(pods, "canary", REVISION)
    assert canary is not None and (canary.reason, canary.pod) == ("ErrImagePull", "bot-canary-5f-abcde")


def test_the_same_pods_in_any_order_give_the_same_answer() -> None:
    pods = [
        pod(container(waiting("ImagePullBackOff")), name="bot-b"),
        pod(container(waiting("CrashLoopBackOff", BACK_OFF), last=terminated("Error", 2), restarts=1), name="bot-a"),
        pod(container(RUNNING, ready=True), name="bot-c", phase="Running"),
    ]
    first = pod_failure(pods, "stable", REVISION)
    assert first is not None and first.pod == "bot-a"
    assert pod_failure(list(reversed(pods)), "stable", REVISION) == first


def test_a_long_kubelet_message_is_cut_not_dropped() -> None:
    failure = pod_failure([pod(container(waiting("ErrImagePull", PULL_MESSAGE * 3)))], "stable", REVISION)
    assert failure is not None
    assert len(failure.message) == MESSAGE_LIMIT and failure.message.endswith("...")
    assert "ghcr.io/agentfleet/does-not-exist:0" in failure.message
