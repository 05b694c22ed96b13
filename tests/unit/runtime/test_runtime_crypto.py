from __future__ import annotations

import pytest
from agentfleet_runtime.memory.crypto import DecryptionError, RecordCipher, derive_key
from hypothesis import given
from hypothesis import strategies as st


@given(plaintext=st.binary(max_size=2048), aad=st.binary(max_size=64))
def test_round_trip(plaintext: bytes, aad: bytes) -> None:
    cipher = RecordCipher(b"key material")
    assert cipher.decrypt(cipher.encrypt(plaintext, aad), aad) == plaintext


def test_ciphertext_hides_the_plaintext_and_nonces_differ() -> None:
    cipher = RecordCipher(b"k")
    first, second = cipher.encrypt(b"secret phrase", b"a"), cipher.encrypt(b"secret phrase", b"a")
    assert b"secret phrase" not in first
    assert first != second


@pytest.mark.parametrize("damage", ["tamper", "other-session", "other-key", "truncated"])
def test_anything_but_the_original_fails_authentication(damage: str) -> None:
    cipher = RecordCipher(b"key one")
    record = cipher.encrypt(b"hello", b"session-a")
    aad = b"session-a"
    if damage == "tamper":
        record = record[:-1] + bytes([record[-1] ^ 1])
    elif damage == "other-session":
        aad = b"session-b"
    elif damage == "other-key":
        cipher = RecordCipher(b"key two")
    else:
        record = record[:10]
    with pytest.raises(DecryptionError):
        cipher.decrypt(record, aad)


def test_key_is_derived_to_256_bits_and_empty_material_is_refused(tmp_path) -> None:
    assert len(derive_key(b"x")) == 32
    with pytest.raises(ValueError):
        derive_key(b"")
    key_file = tmp_path / "key"
    key_file.write_bytes(b"from a file\n")
    assert RecordCipher.from_file(key_file).decrypt(RecordCipher(b"from a file").encrypt(b"v", b""), b"") == b"v"
