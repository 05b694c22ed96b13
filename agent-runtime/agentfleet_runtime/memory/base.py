"""The session memory every request goes through, whichever store holds the bytes.

Stores keep opaque records; this layer decides what a record is: redacted JSON, encrypted
when a key is configured. Keeping both steps here means no store can hold plaintext PII.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .crypto import DecryptionError, RecordCipher
from .redaction import Redactor

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The session store cannot be reached; requests that need it answer 503."""


class SessionBackend(Protocol):
    """Ordered lists of opaque records per key, trimmed and expiring (sliding) as a whole; and single
    values with a fixed expiry (the answer cache, memory/answer_cache.py)."""

    async def load(self, key: str) -> list[bytes]: ...
    async def append(self, key: str, records: list[bytes]) -> None: ...
    async def delete(self, key: str) -> bool: ...
    async def get_value(self, key: str) -> bytes | None: ...
    async def set_value(self, key: str, value: bytes, ttl_seconds: int) -> None: ...
    async def ping(self) -> bool: ...
    async def aclose(self) -> None: ...


@dataclass
class Turn:
    """One exchange: what the caller said, what the agent answered and which tools it used."""

    messages: list[dict[str, str]]
    reply: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"messages": self.messages, "reply": self.reply, "toolCalls": self.tool_calls, "at": self.at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Turn:
        return cls(
            messages=list(data.get("messages", [])),
            reply=str(data.get("reply", "")),
            tool_calls=list(data.get("toolCalls", [])),
            at=float(data.get("at", 0.0)),
        )


def session_key(namespace: str, agent: str, session_id: str, secret: bytes | None = None) -> str:
    # Session ids are chosen by callers and are often personal (the OpenAI `user` field is
    # commonly an e-mail address), so only a digest of them appears in key names. A keyed digest
    # (HMAC with the StatePolicy's session key): with a plain one, whoever reads Redis could confirm
    # a guessed address by hashing it. The hash tag {...} keeps one session in one Redis Cluster slot.
    data = session_id.encode("utf-8")
    if secret:
        digest = hmac.new(secret, data, hashlib.sha256).hexdigest()[:32]
        return f"af:{{{namespace}/{agent}/k{digest}}}:turns"
    digest = hashlib.sha256(data).hexdigest()[:32]
    return f"af:{{{namespace}/{agent}/{digest}}}:turns"


class SessionMemory:
    def __init__(
        self,
        backend: SessionBackend,
        *,
        namespace: str,
        agent: str,
        redactor: Redactor | None = None,
        cipher: RecordCipher | None = None,
        key_secret: bytes | None = None,
    ) -> None:
        self.backend = backend
        self._namespace = namespace
        self._agent = agent
        self._redactor = redactor or Redactor([])
        self._cipher = cipher
        self._key_secret = key_secret

    def key(self, session_id: str) -> str:
        return session_key(self._namespace, self._agent, session_id, self._key_secret)

    def _legacy_key(self, session_id: str) -> str | None:
        """Where a session lived before its store had a session key (plain SHA-256 names)."""
        return session_key(self._namespace, self._agent, session_id) if self._key_secret else None

    def _encode(self, turn: Turn, key: str) -> bytes:
        data = json.dumps(self._redactor.redact_value(turn.to_json()), separators=(",", ":")).encode()
        return self._cipher.encrypt(data, key.encode()) if self._cipher else data

    def _decode(self, record: bytes, key: str) -> Turn | None:
        try:
            data = self._cipher.decrypt(record, key.encode()) if self._cipher else record
            return Turn.from_json(json.loads(data))
        except (DecryptionError, ValueError, TypeError) as exc:
            # A rotated key or a damaged record loses that turn, not the whole conversation.
            log.warning("skipping unreadable session record", extra={"reason": type(exc).__name__})
            return None

    async def history(self, session_id: str) -> list[Turn]:
        key = self.key(session_id)
        records = await self.backend.load(key)
        legacy = self._legacy_key(session_id)
        if not records and legacy is not None:
            return await self._migrate(legacy, key)
        turns = (self._decode(record, key) for record in records)
        return [turn for turn in turns if turn is not None]

    async def _migrate(self, legacy: str, key: str) -> list[Turn]:
        """A session stored under its plain-hash name moves to the keyed one on first read, so no
        conversation is lost when a store gets its session key. Records are re-encoded: the cipher
        binds each record to its key name."""
        turns = [t for t in (self._decode(r, legacy) for r in await self.backend.load(legacy)) if t is not None]
        if turns:
            await self.backend.append(key, [self._encode(turn, key) for turn in turns])
            await self.backend.delete(legacy)
        return turns

    async def append(self, session_id: str, turn: Turn) -> None:
        key = self.key(session_id)
        await self.backend.append(key, [self._encode(turn, key)])

    async def erase(self, session_id: str) -> bool:
        erased = await self.backend.delete(self.key(session_id))
        legacy = self._legacy_key(session_id)
        if legacy is not None:
            erased = await self.backend.delete(legacy) or erased
        return erased

    async def ping(self) -> bool:
        return await self.backend.ping()

    async def aclose(self) -> None:
        await self.backend.aclose()
