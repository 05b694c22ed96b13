"""How a connector proves who it is to the system behind it.

Credentials come from the Connector's Secret, mounted as a directory of files and re-read
when it rotates. Error messages name the missing key, never a value.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from ..config import ConnectorAuth
from ..secretfiles import SecretDir
from ..tls import untrusted_message


class CredentialsError(Exception):
    """The connector cannot authenticate; the message is safe to show and log."""


class ConnectorCredentials:
    """Headers for one request; `invalidate` is called once after a 401 when `refreshable`."""

    refreshable = False

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        return {}

    def invalidate(self) -> None:
        return None


class _FromSecret(ConnectorCredentials):
    def __init__(self, secrets: SecretDir, connector: str) -> None:
        self._secrets = secrets
        self._connector = connector

    def _require(self, key: str) -> str:
        value = self._secrets.get(key)
        if not value:
            raise CredentialsError(f"connector {self._connector}: secret key '{key}' is missing or empty")
        return value


class ApiKeyCredentials(_FromSecret):
    def __init__(self, secrets: SecretDir, connector: str, header: str) -> None:
        super().__init__(secrets, connector)
        self._header = header

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        return {self._header: self._require("apiKey")}


class BearerCredentials(_FromSecret):
    def __init__(self, secrets: SecretDir, connector: str, key: str = "token") -> None:
        super().__init__(secrets, connector)
        self._key = key

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._require(self._key)}"}


class BasicCredentials(_FromSecret):
    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        pair = f"{self._require('username')}:{self._require('password')}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode('ascii')}"}


class OAuth2ClientCredentials(_FromSecret):
    """RFC 6749 client credentials grant; the token is shared by all calls until it nears expiry."""

    refreshable = True

    def __init__(
        self,
        secrets: SecretDir,
        connector: str,
        token_url: str,
        scopes: list[str],
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(secrets, connector)
        self._token_url = token_url
        self._scopes = scopes
        self._timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._secret_generation = -1
        self._lock = asyncio.Lock()
        self.tokens_fetched = 0

    def invalidate(self) -> None:
        self._token = None

    def _fresh(self) -> bool:
        # A rotated client secret invalidates the token it obtained.
        self._secrets.values()
        return (
            self._token is not None
            and self._clock() < self._expires_at
            and self._secret_generation == self._secrets.generation
        )

    async def headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        if not self._fresh():
            async with self._lock:  # one token request, however many calls are waiting
                if not self._fresh():
                    await self._fetch(http)
        return {"Authorization": f"Bearer {self._token}"}

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        client_id, client_secret = self._require("clientId"), self._require("clientSecret")
        generation = self._secrets.generation
        form = {"grant_type": "client_credentials"}
        if self._scopes:
            form["scope"] = " ".join(self._scopes)
        try:
            response = await http.post(
                self._token_url, data=form, auth=(client_id, client_secret), timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            untrusted = untrusted_message(
                f"connector {self._connector}: the token endpoint", exc, "the Connector's spec.caBundleSecretRef"
            )
            if untrusted is not None:
                raise CredentialsError(untrusted) from None
            raise CredentialsError(
                f"connector {self._connector}: token endpoint unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise CredentialsError(f"connector {self._connector}: token endpoint answered HTTP {response.status_code}")
        try:
            body = response.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise CredentialsError(f"connector {self._connector}: token endpoint sent no access_token") from None
        # Renew a little early so a token never expires in flight.
        self._expires_at = self._clock() + max(0.0, expires_in - min(30.0, expires_in * 0.1))
        self._token = token
        self._secret_generation = generation
        self.tokens_fetched += 1


def build_credentials(auth: ConnectorAuth, connector: str, *, timeout: float) -> ConnectorCredentials:
    if auth.type == "none" or auth.secret_dir is None:
        return ConnectorCredentials()
    secrets = SecretDir(auth.secret_dir)
    if auth.type == "apiKey":
        return ApiKeyCredentials(secrets, connector, auth.header)
    if auth.type == "bearer":
        if auth.token_file:  # e.g. an agent connector: one key of the target's access Secret
            token = Path(auth.token_file)
            return BearerCredentials(SecretDir(token.parent), connector, token.name)
        return BearerCredentials(secrets, connector)
    if auth.type == "basic":
        return BasicCredentials(secrets, connector)
    assert auth.token_url is not None  # enforced by the config model
    return OAuth2ClientCredentials(secrets, connector, auth.token_url, auth.scopes, timeout=timeout)
