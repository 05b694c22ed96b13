"""The operator's view of its own status writes: never decide from a copy older than what it wrote."""

from __future__ import annotations

from agentfleet_operator.reconcile.store import Store


def _body(rv: str, phase: str) -> dict:
    return {"metadata": {"resourceVersion": rv}, "status": {"phase": phase}}


def test_stale_index_copy_is_replaced_by_what_was_written() -> None:
    store = Store()
    store.remember_status(("ns", "a"), "120", {"phase": "Paused"})
    assert store.status_for(("ns", "a"), _body("110", "Progressing")) == {"phase": "Paused"}
    # The watch caught up: the index is the truth again and the memo is dropped.
    assert store.status_for(("ns", "a"), _body("120", "Paused")) == {"phase": "Paused"}
    assert store.status_for(("ns", "a"), _body("110", "Progressing")) == {"phase": "Progressing"}


def test_a_newer_write_by_someone_else_wins() -> None:
    store = Store()
    store.remember_status(("ns", "a"), "120", {"phase": "Paused"})
    assert store.status_for(("ns", "a"), _body("130", "Ready")) == {"phase": "Ready"}
    assert store.status_for(("ns", "b"), _body("1", "Pending")) == {"phase": "Pending"}
