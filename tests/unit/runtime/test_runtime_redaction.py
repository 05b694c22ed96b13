from __future__ import annotations

import pytest
from agentfleet_runtime.memory.redaction import PATTERNS, Redactor
from hypothesis import given, settings
from hypothesis import strategies as st

ALL = ["email", "phone", "creditCard", "iban"]


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("email", "write to ada.lovelace+crm@example.co.uk please"),
        ("phone", "call me at +1 (555) 123-4567 tomorrow"),
        ("phone", "call 030 1234567"),
        ("creditCard", "card 4111 1111 1111 1111 exp 12/29"),
        ("creditCard", "card 4111-1111-1111-1111"),
        ("iban", "IBAN DE89 3704 0044 0532 0130 00 thanks"),
        ("iban", "iban gb82west12345698765432"),
    ],
)
def test_each_kind_is_replaced_by_its_marker(kind: str, text: str) -> None:
    redacted = Redactor([kind]).redact(text)
    assert f"[REDACTED:{kind}]" in redacted
    assert PATTERNS[kind].search(redacted) is None


def test_specific_kinds_win_over_phone() -> None:
    redacted = Redactor(ALL).redact("card 4111 1111 1111 1111 and DE89370400440532013000")
    assert "[REDACTED:creditCard]" in redacted
    assert "[REDACTED:iban]" in redacted
    assert "[REDACTED:phone]" not in redacted


def test_text_without_pii_is_unchanged() -> None:
    text = "My order arrived late, please help. Ticket 42."
    assert Redactor(ALL).redact(text) == text


def test_no_patterns_means_identity_and_falsy() -> None:
    redactor = Redactor([])
    assert not redactor
    assert redactor.redact("ada@example.com") == "ada@example.com"


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="ssn"):
        Redactor(["ssn"])


def test_nested_values_are_redacted() -> None:
    value = {"user": ["ada@example.com", {"phone": "+44 20 7946 0958"}], "n": 3}
    assert Redactor(ALL).redact_value(value) == {"user": ["[REDACTED:email]", {"phone": "[REDACTED:phone]"}], "n": 3}


# Text built from the characters PII is made of, so the patterns are hit often and in odd ways.
pii_alphabet = st.text(alphabet="0123456789 +-.()@abcDEGBxyz_%", max_size=120)
emails = st.emails().map(str)
mixed = st.lists(st.one_of(pii_alphabet, emails, st.text(max_size=30)), max_size=6).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(text=mixed, kinds=st.sets(st.sampled_from(ALL), min_size=1))
def test_redacted_output_never_matches_a_configured_pattern(text: str, kinds: set[str]) -> None:
    redacted = Redactor(kinds).redact(text)
    for kind in kinds:
        assert PATTERNS[kind].search(redacted) is None, (kind, redacted)


@settings(max_examples=200, deadline=None)
@given(text=mixed)
def test_redaction_is_idempotent(text: str) -> None:
    redactor = Redactor(ALL)
    once = redactor.redact(text)
    assert redactor.redact(once) == once


@settings(max_examples=200, deadline=None)
@given(address=emails, prefix=st.text(max_size=20), suffix=st.text(max_size=20))
def test_an_email_never_survives(address: str, prefix: str, suffix: str) -> None:
    assert address not in Redactor(["email"]).redact(f"{prefix} {address} {suffix}")


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/v1/sessions/jane.doe@example.com", "/v1/sessions/[REDACTED:email]"),
        ("/v1/sessions/jane.doe@example.com/messages", "/v1/sessions/[REDACTED:email]/messages"),
        ("/v1/sessions/030-1234567", "/v1/sessions/[REDACTED:phone]"),
        ("/v1/sessions/u-1/messages", "/v1/sessions/u-1/messages"),
        # A local part ending in `/` (RFC 5322 allows it): the address cannot survive whole.
        ("mail a/@example.com", "mail a/[REDACTED:email]"),
        ("mail /@example.com", "mail /[REDACTED:email]"),
        ("@app.route is a decorator, not an address", "@app.route is a decorator, not an address"),
    ],
)
def test_a_session_path_keeps_its_route_and_loses_only_the_id_in_it(path: str, logged: str) -> None:
    assert Redactor(ALL).redact(path) == logged


@settings(max_examples=300, deadline=None)
@given(address=emails, prefix=st.text(alphabet="/abcv1_-", max_size=20))
def test_an_email_match_never_spans_a_slash(address: str, prefix: str) -> None:
    for match in PATTERNS["email"].finditer(f"{prefix}/{address}"):
        assert "/" not in match.group()
