"""status_patch: the merge patch the operator sends for a status. Applying it (RFC 7386, as the API
server does) must leave exactly what the operator wants, and a second round must have nothing to send."""

from __future__ import annotations

from typing import Any

from agentfleet_operator.builders.conditions import status_patch
from hypothesis import given
from hypothesis import strategies as st


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch, the algorithm behind application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def test_a_finished_canary_clears_its_timestamps_on_the_server() -> None:
    stored = {
        "phase": "Ready",
        "rollout": {
            "phase": "Progressing",
            "step": 1,
            "weight": 20,
            "stepStartedAt": "2026-11-23T10:00:00Z",
            "lastProgressAt": "2026-11-23T10:00:05Z",
        },
    }
    wanted = {"phase": "Ready", "rollout": {"phase": "Idle", "step": 0, "weight": 0}}
    patch = status_patch(stored, wanted)
    assert patch == {
        "rollout": {"phase": "Idle", "step": 0, "weight": 0, "stepStartedAt": None, "lastProgressAt": None}
    }
    after = merge_patch(stored, patch)
    assert after == wanted
    assert status_patch(after, wanted) == {}


def test_top_level_fields_not_written_now_are_kept() -> None:
    stored = {"phase": "Ready", "endpoint": "http://bot.ns.svc:8080", "revision": {"stable": "abc"}}
    patch = status_patch(stored, {"phase": "Failed"})
    assert patch == {"phase": "Failed"}
    assert merge_patch(stored, patch)["endpoint"] == "http://bot.ns.svc:8080"


def test_nothing_to_send_when_nothing_changed() -> None:
    stored = {"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True"}], "rollout": {"step": 0}}
    assert status_patch(stored, {"observedGeneration": 3, "rollout": {"step": 0}}) == {}
    assert status_patch(None, {"usedBy": 0}) == {"usedBy": 0}
    assert status_patch({}, {"observedGeneration": None}) == {}


_scalars = st.one_of(st.integers(-3, 3), st.sampled_from(["", "a", "b"]), st.booleans())
_values = st.recursive(
    _scalars | st.lists(_scalars, max_size=3),
    lambda inner: st.dictionaries(st.sampled_from("pqrs"), inner, max_size=4),
    max_leaves=12,
)
_status = st.dictionaries(
    st.sampled_from(["phase", "rollout", "revision", "conditions", "usedBy"]), _values, max_size=5
)


@given(_status, _status)
def test_applying_the_patch_gives_what_was_wanted_and_converges(stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    after = merge_patch(stored, status_patch(stored, wanted))
    for key, value in wanted.items():
        assert after[key] == value
    for key in set(stored) - set(wanted):
        assert after[key] == stored[key]
    assert status_patch(after, wanted) == {}


def test_a_create_in_a_namespace_being_deleted_is_recognised() -> None:
    from agentfleet_operator.kube.client import ApiError

    message = (
        'secrets "bot-access" is forbidden: unable to create new content in namespace team-a because it is '
        "being terminated"
    )
    assert ApiError(403, "Forbidden", message).namespace_terminating
    assert not ApiError(403, "Forbidden", 'secrets is forbidden: User "x" cannot create resource').namespace_terminating
    assert not ApiError(409, "AlreadyExists", message).namespace_terminating
