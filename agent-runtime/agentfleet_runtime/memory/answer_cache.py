"""The Agent's exact-match answer cache (spec.cache): a request seen before is answered from the store.

Which requests may be cached is the Agent's decision (agent.py: temperature 0, no tool called); this
module keeps the answers, in the same store as the sessions and under the same protections:

- Key: the revision and the whole request as the model is sent it (the conversation after the
  Agent's own system prompt: stored history, the new messages, Responses `instructions`; and every
  model parameter), canonical JSON, HMAC-SHA256 with the StatePolicy's session key (a plain SHA-256
  without one). A new revision (a new prompt, model, tool or config) so never meets an old
  revision's answers. The system prompt is left out of the key material because the revision
  already stands for it (it is part of the config the revision hashes).
- Redaction: the request is keyed after the StatePolicy's redaction, and a request that redaction
  changes is not cached at all. Its redacted form could equal another caller's request that differs
  only in personal data, and that caller must never get this answer. An answer redaction would
  change is not stored either, so the store never holds what redaction removes, as for sessions.
- Value: JSON {reply, finishReason}, encrypted like a session record (AES-256-GCM, the key name as
  associated data) when the StatePolicy has encryption; written with a fixed TTL (SET .. EX).
- A store that fails is a miss (the model answers), never an error: the cache only saves work.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .base import SessionBackend, StoreUnavailable
from .crypto import DecryptionError, RecordCipher
from .redaction import Redactor

if TYPE_CHECKING:
    from ..metrics import RuntimeMetrics

log = logging.getLogger(__name__)

CacheResult = Literal["hit", "miss", "bypass"]
KEY_VERSION = 1  # part of the key material: a change of its shape starts a fresh cache


@dataclass(frozen=True)
class CachedAnswer:
    reply: str
    finish_reason: str


@dataclass(frozen=True)
class Lookup:
    """What the cache said about one request: hit (with its answer), miss (with the key to store the
    answer under) or bypass (not cacheable, no key)."""

    result: CacheResult
    key: str | None = None
    answer: CachedAnswer | None = None


def answer_key(
    namespace: str,
    agent: str,
    revision: str,
    request: dict[str, Any],
    *,
    redactor: Redactor,
    secret: bytes | None = None,
) -> str | None:
    """The store key of one request, or None when redaction would change it (never cached).

    `request` is what the model is sent beyond what the revision fixes: {"conversation": [...],
    "params": {...}}. The hash tag {...} keeps each key in one Redis Cluster slot."""
    redacted = redactor.redact_value(request)
    if redacted != request:
        return None
    material = {"v": KEY_VERSION, "revision": revision, "request": redacted}
    data = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if secret:
        digest = "k" + hmac.new(secret, data, hashlib.sha256).hexdigest()[:32]
    else:
        digest = hashlib.sha256(data).hexdigest()[:32]
    return f"af:{{{namespace}/{agent}/{digest}}}:answer"


class AnswerCache:
    def __init__(
        self,
        backend: SessionBackend,
        *,
        namespace: str,
        agent: str,
        revision: str,
        ttl_seconds: int,
        redactor: Redactor | None = None,
        cipher: RecordCipher | None = None,
        key_secret: bytes | None = None,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self.backend = backend
        self.ttl_seconds = ttl_seconds
        self._namespace, self._agent, self._revision = namespace, agent, revision
        self._redactor = redactor or Redactor([])
        self._cipher = cipher
        self._key_secret = key_secret
        self._metrics = metrics

    def key(self, request: dict[str, Any]) -> str | None:
        return answer_key(
            self._namespace,
            self._agent,
            self._revision,
            request,
            redactor=self._redactor,
            secret=self._key_secret,
        )

    def _count(self, result: CacheResult) -> None:
        if self._metrics is not None:
            self._metrics.answer_cache(result)

    def bypass(self) -> Lookup:
        """A request the Agent does not cache (not deterministic); counted like the others."""
        self._count("bypass")
        return Lookup("bypass")

    async def lookup(self, request: dict[str, Any]) -> Lookup:
        key = self.key(request)
        if key is None:
            return self.bypass()
        try:
            record = await self.backend.get_value(key)
        except StoreUnavailable as exc:
            log.warning("answer cache unavailable, asking the model", extra={"reason": str(exc)})
            record = None
        answer = self._decode(record, key) if record is not None else None
        if answer is None:
            self._count("miss")
            return Lookup("miss", key)
        self._count("hit")
        return Lookup("hit", key, answer)

    async def store(self, key: str, reply: str, finish_reason: str) -> bool:
        """Keep the answer for ttlSeconds; False when it was not kept (personal data, store down)."""
        if self._redactor.redact(reply) != reply:
            return False
        data = json.dumps({"reply": reply, "finishReason": finish_reason}, separators=(",", ":")).encode()
        record = self._cipher.encrypt(data, key.encode()) if self._cipher else data
        try:
            await self.backend.set_value(key, record, self.ttl_seconds)
        except StoreUnavailable as exc:
            log.warning("answer cache unavailable, answer not kept", extra={"reason": str(exc)})
            return False
        return True

    def _decode(self, record: bytes, key: str) -> CachedAnswer | None:
        try:
            data = json.loads(self._cipher.decrypt(record, key.encode()) if self._cipher else record)
            return CachedAnswer(str(data["reply"]), str(data["finishReason"]))
        except (DecryptionError, ValueError, TypeError, KeyError) as exc:
            # A rotated key or a damaged value: the model answers, and its answer replaces it.
            log.warning("skipping unreadable cached answer", extra={"reason": type(exc).__name__})
            return None
