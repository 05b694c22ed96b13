"""Authenticated encryption of stored session records.

AES-256-GCM with a key derived by HKDF-SHA256 from the key file's bytes (so any length of
Secret works and the raw Secret is never used directly), a random 96-bit nonce per record,
and the record's storage key as associated data, so a record copied into another session
fails to decrypt instead of leaking into it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_BYTES = 12
_HKDF_INFO = b"agentfleet/session-records/v1"


class DecryptionError(Exception):
    """A stored record is corrupt, was written under another key, or belongs elsewhere."""


def derive_key(material: bytes) -> bytes:
    if not material:
        raise ValueError("encryption key material is empty")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(material)


class RecordCipher:
    def __init__(self, material: bytes) -> None:
        self._aead = AESGCM(derive_key(material))

    @classmethod
    def from_file(cls, path: str | Path) -> RecordCipher:
        # Strip only a trailing newline an editor may add; the rest is key material as given.
        return cls(Path(path).read_bytes().rstrip(b"\r\n"))

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, record: bytes, associated_data: bytes) -> bytes:
        if len(record) < 1 + _NONCE_BYTES + 16 or record[:1] != _VERSION:
            raise DecryptionError("record is not in the encrypted format")
        nonce = record[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, record[1 + _NONCE_BYTES :], associated_data)
        except InvalidTag:
            raise DecryptionError("record failed authentication") from None
