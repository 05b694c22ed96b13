"""Promote given again on a later canary (issue 12): what the Paused message tells a person to write
works, a removed-and-rewritten annotation is acted on, and a leftover one is reported, never applied."""

from __future__ import annotations

import re

from agentfleet_operator.rollout.state_machine import INTENT_ANNOTATIONS
from rollout_testkit import Driver, make_spec, pause, set_weight

PROMOTE = INTENT_ANNOTATIONS["promote"]


def _suggested(message: str, kind: str) -> str:
    found = re.search(rf"{re.escape(PROMOTE)}=({kind}:[^ ]+)", message)
    assert found, message
    return found.group(1)


def test_the_value_the_pause_message_names_promotes_every_canary() -> None:
    d = Driver(make_spec([pause(), set_weight(10)]))
    d.step("s1")
    for canary in ("c1", "c2", "c3"):
        paused = d.step(canary)
        assert paused.rollout.phase == "Paused"
        value = _suggested(paused.rollout.message, "full")
        assert value != d.intents.get("promote"), "the suggested value must be a change"
        promoted = d.step(canary, promote=value)
        assert promoted.promoted and promoted.revisions.stable == canary


def test_the_suggested_step_value_differs_from_the_annotation_now() -> None:
    d = Driver(make_spec([pause(), pause(), set_weight(10)]))
    d.step("s1")
    d.step("c1")
    first = _suggested(d.rollout.message, "step")
    assert d.step("c1", promote=first).rollout.step == 1
    second = _suggested(d.rollout.message, "step")
    assert second != first
    assert d.step("c1", promote=second).rollout.step == 2


def test_leftover_promote_on_a_new_canary_is_reported_not_applied() -> None:
    d = Driver(make_spec([pause(), set_weight(10)]))
    d.step("s1")
    d.step("c1")
    assert d.step("c1", promote="full").promoted
    started = d.step("c2")  # the annotation still says full
    assert not started.promoted and started.revisions.canary == "c2"
    notes = [m for _, r, m in started.events if r == "IntentIgnored"]
    assert notes and f"{PROMOTE}=full:c2" in notes[0]
    assert d.step("c2", promote="full:c2").promoted


def test_removing_and_rewriting_the_same_value_is_acted_on() -> None:
    d = Driver(make_spec([pause(), set_weight(10)]))
    d.step("s1")
    d.step("c1")
    assert d.step("c1", promote="full").promoted
    d.step("c2")
    del d.intents["promote"]  # kubectl annotate agt/x agentfleet.dev/promote-
    assert "promote" not in d.step("c2").rollout.handled_intents
    assert d.step("c2", promote="full").promoted
