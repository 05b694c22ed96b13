"""A demo MCP server (an order desk) for the samples and the tests, built with the MCP Python SDK.

It stands in for the MCP servers users already run: real protocol (Streamable HTTP, or the legacy
HTTP+SSE transport), real bearer-token auth from the SDK, three tools with different habits:

- lookup_order: read-only, structured output (the SDK's structuredContent);
- create_ticket: has a side effect (never safe to retry); counts the tickets it made;
- check_stock: answers isError (with the reason) for an unknown SKU.

`--schema v2` adds a required `region` argument to lookup_order: a server that changed a tool's
input schema, which must roll out as a new revision of every Agent using it.
`--era 2025` answers like the 2025-era servers most users still run: no `server/discover`, one
session per client named by its Mcp-Session-Id, which the server forgets when it restarts.
`--delay SECONDS` makes every tool answer that late (a slow backend; create_ticket still opens
its ticket at once, so a client that repeats it after a timeout opens two).
Each ticket opened is printed on stdout ("opened ticket T-1"), as a real desk would log it.

Run: python demo_mcp.py --port 8080 [--transport streamable-http|sse] [--schema v1|v2] [--era 2025]
The token callers must present is read from the environment variable DEMO_MCP_TOKEN (none: open).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import os
from typing import Any

import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

ORDERS = {
    "A-1001": {"status": "shipped", "eta": "2026-12-03", "region": "eu"},
    "A-1002": {"status": "packing", "eta": "2026-12-05", "region": "us"},
}
STOCK = {"KB-01": 14, "MS-02": 0}


class StaticToken:
    """Accepts exactly one bearer token (the SDK's TokenVerifier protocol)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token.encode()):
            return AccessToken(token="redacted", client_id="demo", scopes=[])
        return None


def build_server(schema: str, token: str | None, public_url: str, delay: float = 0.0) -> MCPServer[Any]:
    auth: dict[str, Any] = {}
    if token:
        auth = {
            "token_verifier": StaticToken(token),
            "auth": AuthSettings(issuer_url=public_url, resource_server_url=public_url),
        }
    server: MCPServer[Any] = MCPServer("demo-orders", instructions="Order desk of the agentfleet demo.", **auth)
    tickets = itertools.count(1)

    async def backend() -> None:
        if delay:
            await asyncio.sleep(delay)

    if schema == "v2":

        @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
        async def lookup_order(order_id: str, region: str) -> dict[str, str]:
            """Look up an order by its id (A-1001) in a region (eu, us)."""
            await backend()
            order = ORDERS.get(order_id)
            if order is None or order["region"] != region:
                raise ToolError(f"no order {order_id} in region {region}")
            return {"orderId": order_id, "status": order["status"], "eta": order["eta"]}

    else:

        @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
        async def lookup_order(order_id: str) -> dict[str, str]:
            """Look up an order by its id (A-1001): status and expected delivery date."""
            await backend()
            order = ORDERS.get(order_id)
            if order is None:
                raise ToolError(f"no order {order_id}")
            return {"orderId": order_id, "status": order["status"], "eta": order["eta"]}

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, idempotentHint=False))
    async def create_ticket(subject: str, priority: str = "normal") -> str:
        """Open a support ticket; returns its number."""
        number = next(tickets)
        print(f"opened ticket T-{number}", flush=True)
        await backend()
        return f"ticket T-{number} opened ({priority}): {subject}"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    async def check_stock(sku: str) -> str:
        """Units in stock for a SKU (KB-01, MS-02)."""
        await backend()
        if sku not in STOCK:
            raise ToolError(f"unknown SKU {sku}")
        return f"{STOCK[sku]} units of {sku} in stock"

    return server


class HandshakeEra:
    """--era 2025: hide the 2026 protocol header, so the modern `server/discover` probe is refused
    like a 2025-era server refuses it, and the client falls back to `initialize` and a session."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [
                (key, value)
                for key, value in scope["headers"]
                if key != b"mcp-protocol-version" or value.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS
            ]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--schema", choices=["v1", "v2"], default="v1")
    parser.add_argument("--era", choices=["2026", "2025"], default="2026")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds every tool takes to answer")
    args = parser.parse_args(argv)
    token = os.environ.get("DEMO_MCP_TOKEN") or None
    url = f"http://{args.host}:{args.port}"
    server = build_server(args.schema, token, url, args.delay)
    # The SDK turns DNS-rebinding protection on for loopback binds; the tests reach it by 127.0.0.1.
    app = server.sse_app(host=args.host) if args.transport == "sse" else server.streamable_http_app(host=args.host)
    if args.era == "2025":
        app = HandshakeEra(app)
    # uvicorn handles SIGTERM itself (it installs the handler, so PID 1 in a pod exits too).
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
