"""Slim every watched object before kopf keeps it, as client-go informers do with
`TransformStripManagedFields`.

`metadata.managedFields` is 35-50% of the bytes of every object we watch (Agents, Deployments, Services,
Secrets, ...) and nothing here reads it. kopf holds each listed object until every index is filled, so
at start-up all of them are in memory at once: with 1000 Agents and their ~7000 children that field
alone is tens of MiB of the operator's peak. `kubectl apply` also leaves a full copy of the object in an
annotation, which only kubectl reads. kopf has no transform hook, so the one stream function
all its watchers go through is wrapped; `install()` fails loudly if a kopf upgrade moves it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching

_WRAPPED_MARK = "_agentfleet_slimmed"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def slim(raw_event: Any) -> Any:
    """Drop what no handler reads from one raw watch event (in place: the dict is fresh from JSON)."""
    if isinstance(raw_event, dict):
        obj = raw_event.get("object")
        if isinstance(obj, dict):
            metadata = obj.get("metadata")
            if isinstance(metadata, dict):
                metadata.pop("managedFields", None)
                annotations = metadata.get("annotations")
                if isinstance(annotations, dict):
                    annotations.pop(LAST_APPLIED, None)
    return raw_event


def _wrap(stream: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def slimmed(**kwargs: Any) -> AsyncIterator[Any]:
        async for raw_event in stream(**kwargs):
            yield slim(raw_event)

    setattr(slimmed, _WRAPPED_MARK, True)
    return slimmed


def install() -> None:
    original = getattr(watching, "continuous_watch", None)
    if original is None or not callable(original):
        raise RuntimeError(
            "kopf._cogs.clients.watching.continuous_watch is gone: this kopf version is not "
            "supported (see handlers/watch_transform.py)"
        )
    if not getattr(original, _WRAPPED_MARK, False):
        watching.continuous_watch = _wrap(original)  # type: ignore[assignment]
