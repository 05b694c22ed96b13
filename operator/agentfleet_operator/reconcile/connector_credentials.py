"""The headers an MCP Connector's tool discovery sends: the same credentials the agents use.

The agents read the Connector's Secret as mounted files (the runtime's tools/auth.py); the operator
reads it from the API server at discovery time and keeps nothing. Errors name the Secret and the
key, never a value.
"""

from __future__ import annotations

import base64
import binascii
import ssl

import httpx

from ..api import reasons
from ..api.base import CABundleReference
from ..api.connector import SECRET_KEYS_BY_AUTH, ConnectorAuth
from ..kube.client import ApiError, KubeClient


class CredentialsProblem(Exception):
    """The discovery cannot authenticate; `reason` is AuthFailed or NotChecked, the message is safe."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def _secret_values(client: KubeClient, namespace: str, auth: ConnectorAuth) -> dict[str, str]:
    assert auth.secret_ref is not None
    name = auth.secret_ref.name
    try:
        secret = await client.get("v1", "Secret", namespace, name)
    except ApiError as exc:
        raise CredentialsProblem(reasons.NOT_CHECKED, f"could not read Secret {name}: {exc.message}") from None
    data = (secret or {}).get("data") or {}
    values: dict[str, str] = {}
    for key in SECRET_KEYS_BY_AUTH[auth.type]:
        try:
            values[key] = base64.b64decode(data.get(key, "")).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsProblem(reasons.AUTH_FAILED, f"Secret {name} key {key} is not UTF-8 text") from None
        if not values[key]:
            raise CredentialsProblem(reasons.NOT_CHECKED, f"Secret {name} has no value for key {key}")
    return values


async def discovery_trust(client: KubeClient, namespace: str, ref: CABundleReference | None) -> ssl.SSLContext | None:
    """The Connector's CA bundle (spec.caBundleSecretRef) on top of the public CAs, as the agents
    trust it (the runtime's tls.client_context); None when it names none."""
    if ref is None:
        return None
    try:
        secret = await client.get("v1", "Secret", namespace, ref.name)
    except ApiError as exc:
        raise CredentialsProblem(reasons.NOT_CHECKED, f"could not read Secret {ref.name}: {exc.message}") from None
    try:
        pem = base64.b64decode(((secret or {}).get("data") or {}).get(ref.key, "")).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise CredentialsProblem(reasons.NOT_CHECKED, f"Secret {ref.name} key {ref.key} is not PEM text") from None
    context = httpx.create_ssl_context()
    try:
        context.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise CredentialsProblem(
            reasons.NOT_CHECKED, f"Secret {ref.name} key {ref.key} holds no PEM CA certificate"
        ) from None
    return context


async def _oauth2_token(
    auth: ConnectorAuth, values: dict[str, str], timeout: float, verify: ssl.SSLContext | None
) -> str:
    assert auth.token_url is not None
    form = {"grant_type": "client_credentials"}
    if auth.scopes:
        form["scope"] = " ".join(auth.scopes)
    try:
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, verify=verify if verify is not None else True
        ) as http:
            response = await http.post(auth.token_url, data=form, auth=(values["clientId"], values["clientSecret"]))
    except httpx.HTTPError as exc:
        raise CredentialsProblem(reasons.UNREACHABLE, f"token endpoint unreachable ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise CredentialsProblem(reasons.AUTH_FAILED, f"token endpoint answered HTTP {response.status_code}")
    try:
        return str(response.json()["access_token"])
    except (ValueError, KeyError, TypeError):
        raise CredentialsProblem(reasons.AUTH_FAILED, "token endpoint sent no access_token") from None


async def discovery_headers(
    client: KubeClient, namespace: str, auth: ConnectorAuth, timeout: float, verify: ssl.SSLContext | None = None
) -> dict[str, str]:
    if auth.type == "none" or auth.secret_ref is None:
        return {}
    values = await _secret_values(client, namespace, auth)
    if auth.type == "apiKey":
        return {auth.header or "X-API-Key": values["apiKey"]}
    if auth.type == "bearer":
        return {"Authorization": f"Bearer {values['token']}"}
    if auth.type == "basic":
        pair = f"{values['username']}:{values['password']}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode('ascii')}"}
    return {"Authorization": f"Bearer {await _oauth2_token(auth, values, timeout, verify)}"}
