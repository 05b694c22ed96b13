"""The watch transform drops what no handler reads, keeps everything else, and wraps kopf's stream once."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agentfleet_operator.handlers import watch_transform
from agentfleet_operator.handlers.watch_transform import LAST_APPLIED, slim
from kopf._cogs.clients import watching


def event() -> dict[str, Any]:
    return {
        "type": "MODIFIED",
        "object": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "bot",
                "namespace": "ns",
                "uid": "u1",
                "resourceVersion": "7",
                "labels": {"agentfleet.dev/agent": "bot"},
                "annotations": {LAST_APPLIED: '{"big": "copy"}', "agentfleet.dev/promote": "step"},
                "managedFields": [{"manager": "agentfleet", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 2},
        },
    }


def test_slim_drops_managed_fields_and_last_applied_only() -> None:
    raw = event()
    expected = copy.deepcopy(raw)
    del expected["object"]["metadata"]["managedFields"]
    del expected["object"]["metadata"]["annotations"][LAST_APPLIED]
    assert slim(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {"type": "BOOKMARK"},
        {"object": "not a dict"},
        {"object": {"metadata": None}},
        {"object": {"metadata": {"annotations": None}}},
    ],
)
def test_slim_passes_odd_events_through(raw: Any) -> None:
    assert slim(copy.deepcopy(raw)) == raw


async def test_install_wraps_the_stream_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    async def original(**kwargs: Any) -> AsyncIterator[Any]:
        seen.append(kwargs)
        yield event()
        yield watching.Bookmark.LISTED

    monkeypatch.setattr(watching, "continuous_watch", original)
    watch_transform.install()
    watch_transform.install()  # idempotent: a second call must not wrap the wrapper
    wrapped = watching.continuous_watch
    assert wrapped is not original
    out = [e async for e in wrapped(resource="r", namespace=None)]
    assert seen == [{"resource": "r", "namespace": None}]
    assert "managedFields" not in out[0]["object"]["metadata"]
    assert out[1] is watching.Bookmark.LISTED


def test_install_fails_loudly_when_kopf_moves_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(watching, "continuous_watch")
    with pytest.raises(RuntimeError, match="continuous_watch is gone"):
        watch_transform.install()
