"""A fake CRM REST API that enforces one auth type at a time.

crm = FakeCRM(auth="oauth2").start()      # none | apiKey | bearer | basic | oauth2
GET  /customers?email=..                  -> {"email", "name", "tier"}
GET  /customers/{id}                      -> {"id", "name"}
POST /tickets        (JSON body)          -> {"id", "received"}   (webhook target)
POST /oauth/token    client credentials   -> {"access_token", "expires_in"}; counts token_issues
crm.mode = "down"                         # every API call answers 503
crm.mode = "hang"                         # every API call waits (until stop or hang_seconds)
crm.revoke_tokens()                       # issued OAuth tokens stop working (401)
crm.hits["/customers"]                    # API calls that reached the server, by path
"""

from __future__ import annotations

import argparse
import base64
import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qs

from ._server import FakeServer, JsonHandler

DEFAULT_CREDENTIALS = {
    "apiKey": "crm-api-key-123",
    "token": "crm-bearer-token-456",
    "username": "crm-user",
    "password": "crm-password-789",
    "clientId": "crm-client",
    "clientSecret": "crm-client-secret-000",
}


class _CRMHandler(JsonHandler):
    owner: FakeCRM

    def _authorized(self) -> bool:
        crm = self.owner
        creds = crm.credentials
        header = self.headers.get("Authorization", "")
        if crm.auth == "none":
            return True
        if crm.auth == "apiKey":
            return self.headers.get(crm.api_key_header) == creds["apiKey"]
        if crm.auth == "bearer":
            return header == f"Bearer {creds['token']}"
        if crm.auth == "basic":
            expected = base64.b64encode(f"{creds['username']}:{creds['password']}".encode()).decode()
            return header == f"Basic {expected}"
        if crm.auth == "oauth2":
            with crm.lock:
                return header.startswith("Bearer ") and header[7:] in crm.valid_tokens
        return False

    def _token(self) -> None:
        crm = self.owner
        form = {k: v[0] for k, v in parse_qs(self.read_body().decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            self.send_json(400, {"error": "unsupported_grant_type"})
            return
        if client_id != crm.credentials["clientId"] or client_secret != crm.credentials["clientSecret"]:
            self.send_json(401, {"error": "invalid_client"})
            return
        with crm.lock:
            crm.token_issues += 1
            token = f"oauth-token-{crm.token_issues}"
            crm.valid_tokens.add(token)
            crm.scopes_requested.append(form.get("scope", ""))
        self.send_json(200, {"access_token": token, "token_type": "Bearer", "expires_in": crm.token_ttl})

    def _api(self, method: str) -> None:
        crm = self.owner
        body = self.read_body()
        route = self.route
        with crm.lock:
            crm.hits[route] += 1
            crm.requests.append(
                {
                    "method": method,
                    "path": route,
                    "query": self.query,
                    "headers": dict(self.headers),
                    "body": body.decode(errors="replace"),
                }
            )
        if crm.mode == "hang":
            crm.released.wait(crm.hang_seconds)
            self.send_json(503, {"error": "hung"})
            return
        if crm.mode == "down":
            self.send_json(503, {"error": "service unavailable"})
            return
        if not self._authorized():
            self.send_json(401, {"error": "unauthorized"})
            return
        if method == "GET" and route == "/customers":
            email = (self.query.get("email") or [""])[0]
            if not email:
                self.send_json(400, {"error": "email is required"})
                return
            self.send_json(200, {"email": email, "name": "Ada Lovelace", "tier": "gold"})
        elif method == "GET" and route.startswith("/customers/"):
            self.send_json(200, {"id": route.rsplit("/", 1)[1], "name": "Ada Lovelace"})
        elif method == "POST" and route == "/tickets":
            try:
                received = json.loads(body or b"null")
            except ValueError:
                self.send_json(400, {"error": "invalid JSON"})
                return
            with crm.lock:
                crm.tickets.append(received)
                number = len(crm.tickets)
            self.send_json(201, {"id": number, "received": received})
        else:
            self.send_json(404, {"error": "not found"})

    def do_GET(self) -> None:
        self._api("GET")

    def do_POST(self) -> None:
        if self.route == "/oauth/token":
            self._token()
        else:
            self._api("POST")

    def do_PUT(self) -> None:
        self._api("PUT")

    def do_PATCH(self) -> None:
        self._api("PATCH")

    def do_DELETE(self) -> None:
        self._api("DELETE")


class FakeCRM(FakeServer):
    handler = _CRMHandler

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth: str = "none",
        api_key_header: str = "X-API-Key",
        credentials: dict[str, str] | None = None,
    ) -> None:
        super().__init__(host, port)
        self.auth = auth
        self.api_key_header = api_key_header
        self.credentials = {**DEFAULT_CREDENTIALS, **(credentials or {})}
        self.mode = "ok"  # ok | down | hang
        self.hang_seconds = 60.0
        self.token_ttl = 3600
        self.token_issues = 0
        self.valid_tokens: set[str] = set()
        self.scopes_requested: list[str] = []
        self.hits: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.tickets: list[Any] = []

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    def revoke_tokens(self) -> None:
        with self.lock:
            self.valid_tokens.clear()

    def write_secret_dir(self, directory: Any) -> str:
        """Write the credentials as a Kubernetes-style Secret directory (one file per key)."""
        from pathlib import Path

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for key, value in self.credentials.items():
            (path / key).write_text(value + "\n")
        return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description="fake CRM REST API")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auth", default="none", choices=["none", "apiKey", "bearer", "basic", "oauth2"])
    args = parser.parse_args()
    FakeCRM(port=args.port, auth=args.auth).serve_forever()


if __name__ == "__main__":
    main()
