"""Session storage in plain Redis (no modules): one list per session, trimmed and expiring.

Appends run as one MULTI/EXEC transaction (RPUSH, LTRIM, EXPIRE), so concurrent pods never
leave a session untrimmed or without a TTL. Reads refresh the TTL too: expiry is sliding.
Cached answers are plain string keys written with SET .. EX: they expire when their TTL ends,
however often they are read.
"""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .base import StoreUnavailable


class RedisBackend:
    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: int,
        max_turns: int,
        password_file: str | None = None,
        socket_timeout: float = 2.0,
    ) -> None:
        password = Path(password_file).read_text(encoding="utf-8").strip() if password_file else None
        kwargs: dict[str, object] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "health_check_interval": 30,
            # Pooled connections go stale when Redis restarts (or a proxy drops them); without a retry
            # the first command on each one fails and the caller gets a 503 although Redis is back.
            # One reconnect-and-retry on connection errors only: a timeout is not retried, so a Redis
            # that is down still answers 503 quickly.
            "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1, supported_errors=(RedisConnectionError,)),
        }
        if password:
            kwargs["password"] = password
        self._client: aioredis.Redis = aioredis.Redis.from_url(url, **kwargs)
        self._ttl = ttl_seconds
        self._max_turns = max_turns

    async def load(self, key: str) -> list[bytes]:
        try:
            return await self._load(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None

    async def _load(self, key: str) -> list[bytes]:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.lrange(key, 0, -1)
            pipe.expire(key, self._ttl)
            records, _ = await pipe.execute()
        return list(records)

    async def append(self, key: str, records: list[bytes]) -> None:
        try:
            await self._append(key, records)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None

    async def _append(self, key: str, records: list[bytes]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *records)
            pipe.ltrim(key, -self._max_turns, -1)
            pipe.expire(key, self._ttl)
            await pipe.execute()

    async def delete(self, key: str) -> bool:
        try:
            return bool(await self._client.delete(key))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None

    async def get_value(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None
        return bytes(value) if value is not None else None

    async def set_value(self, key: str, value: bytes, ttl_seconds: int) -> None:
        try:
            await self._client.set(key, value, ex=ttl_seconds)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from None

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def aclose(self) -> None:
        await self._client.aclose()
