"""Why an Agent's pods cannot start, read from the status the kubelet writes on them.

A Deployment only says that pods are not available; it never says why, and a crash loop or a failed
image pull leaves its status unchanged, so an Agent would show "rolling out" until the Deployment's
progress deadline (ten minutes), then only "ProgressDeadlineExceeded". The kubelet's reasons on the
pods (containerStatuses[].state.waiting.reason, lastState.terminated.reason) are what a user needs
in the Agent's condition: they name the fix. Pure, so the decision is tested on the shapes the
kubelet writes, and the reconciler only fetches the pods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import names

# Waiting reasons that do not resolve by waiting: each needs a change (image, spec, Secret, config).
# ContainerCreating and PodInitializing are normal steps and deliberately absent.
FAILED_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
OOM_KILLED = "OOMKilled"
CRASH_LOOP = "CrashLoopBackOff"
# The kubelet's own messages name images, pods and files, never Secret values; kept short anyway,
# so a condition stays readable in `kubectl get -o wide` and `describe`.
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class PodFailure:
    reason: str  # one CamelCase word, the kubelet's (or OOMKilled when that is why a loop restarts)
    message: str
    pod: str
    container: str


def _terminated_failure(terminated: Mapping[str, Any] | None) -> bool:
    return bool(terminated) and (terminated.get("reason") == OOM_KILLED or terminated.get("exitCode", 0) != 0)


def _exit_text(terminated: Mapping[str, Any]) -> str:
    reason = terminated.get("reason") or "exited"
    return f"{reason}, exit code {terminated.get('exitCode', 0)}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def container_failure(status: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, detail) when this container cannot start or keeps dying; None while it may yet work."""
    if status.get("ready"):
        return None
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    restarts = status.get("restartCount", 0)
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    reason = waiting.get("reason", "")
    if reason in FAILED_WAITING:
        detail = waiting.get("message", "")
        if reason == CRASH_LOOP and last:
            # The loop is the symptom; an OOM kill is the cause and has its own fix (the memory limit).
            if last.get("reason") == OOM_KILLED:
                reason = OOM_KILLED
            detail = f"{_exit_text(last)}, restarted {restarts} time(s); {detail}"
        return reason, detail
    # Between two back-offs the container is briefly terminated, or running again but not ready. Named
    # as the loop it is, so the condition does not flip to "in progress" and back on every restart.
    if _terminated_failure(terminated):
        return (
            OOM_KILLED if terminated.get("reason") == OOM_KILLED else CRASH_LOOP,
            f"{_exit_text(terminated)}, restarted {restarts} time(s)",
        )
    if state.get("running") is not None and restarts > 0 and _terminated_failure(last):
        return (
            OOM_KILLED if last.get("reason") == OOM_KILLED else CRASH_LOOP,
            f"{_exit_text(last)}, restarted {restarts} time(s); running again, not ready",
        )
    return None


def pod_failure(pods: Iterable[Mapping[str, Any]], track: str, revision: str) -> PodFailure | None:
    """The first failure among the pods of one track at one revision (pods by name, so the same
    cluster state always gives the same answer). Pods of other revisions are ignored: after a fix, the
    old revision's crashing pod is on its way out and says nothing about the new one. So are pods being
    deleted, and finished ones (evicted, say), which their ReplicaSet replaces."""
    candidates = sorted(
        (
            p
            for p in pods
            if (p.get("metadata", {}).get("labels") or {}).get(names.LABEL_TRACK) == track
            and (p.get("metadata", {}).get("labels") or {}).get(names.LABEL_REVISION) == revision
            and not p.get("metadata", {}).get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ),
        key=lambda p: p["metadata"].get("name", ""),
    )
    for pod in candidates:
        status = pod.get("status") or {}
        for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            found = container_failure(container)
            if found is not None:
                reason, detail = found
                pod_name, container_name = pod["metadata"].get("name", ""), container.get("name", "")
                message = f"pod {pod_name} container {container_name}: {reason}"
                if detail:
                    message += f": {detail}"
                return PodFailure(reason, _short(message), pod_name, container_name)
    return None
