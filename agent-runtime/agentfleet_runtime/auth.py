"""Caller authentication: `Authorization: Bearer <key>` against the keys of a mounted Secret.

Every regular, non-hidden file in the directory is one accepted key, so a Secret can hold
an old and a new key during rotation. All failures answer 401 (missing, malformed or unknown
key alike) so a caller cannot probe which keys are well-formed.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from .errors import ApiError
from .secretfiles import SecretDir

log = logging.getLogger(__name__)


class CallerAuth:
    def __init__(
        self, keys_dir: str | None, *, min_interval: float = 1.0, clock: Callable[[], float] | None = None
    ) -> None:
        self.enabled = keys_dir is not None
        kwargs = {"clock": clock} if clock is not None else {}
        self._secrets = SecretDir(keys_dir, min_interval=min_interval, **kwargs) if keys_dir else None
        self._generation = -1
        self._keys: list[bytes] = []
        if not self.enabled:
            log.warning("caller authentication is disabled: no access.apiKeysDir configured")

    def _current_keys(self) -> list[bytes]:
        assert self._secrets is not None
        values = self._secrets.values()
        if self._secrets.generation != self._generation:
            self._generation = self._secrets.generation
            self._keys = [v.encode() for v in values.values() if v]
            log.info("caller keys loaded", extra={"keys": len(self._keys)})
        return self._keys

    def check(self, authorization: str | None) -> None:
        """Raise a 401 ApiError unless the header carries an accepted key."""
        if self._secrets is None:
            return
        if not authorization:
            raise ApiError(
                401,
                "missing Authorization header; use 'Authorization: Bearer <key>'",
                type="authentication_error",
                code="missing_api_key",
            )
        scheme, _, presented = authorization.partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(
                401,
                "malformed Authorization header; use 'Authorization: Bearer <key>'",
                type="authentication_error",
                code="invalid_api_key",
            )
        candidate = presented.encode()
        accepted = False
        # Compare against every key without stopping early: timing says nothing about which matched.
        for key in self._current_keys():
            accepted |= hmac.compare_digest(candidate, key)
        if not accepted:
            raise ApiError(401, "invalid API key", type="authentication_error", code="invalid_api_key")
