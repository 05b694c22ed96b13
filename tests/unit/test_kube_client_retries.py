"""KubeClient against a tiny local HTTP server: which answers it retries, which it returns, which it raises."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from agentfleet_operator.kube.client import ApiError, Credentials, KubeClient
from aiohttp import web

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}, "data": {}}
CM_PATH = "/api/v1/namespaces/ns/configmaps/cm"


@dataclass
class Server:
    url: str
    hits: dict[str, int] = field(default_factory=dict)


def client_for(url: str, max_retries: int = 5) -> KubeClient:
    return KubeClient(Credentials(host=url, verify=False, headers={}), max_retries=max_retries)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    hits: dict[str, int] = {}

    def counted(handler: Callable[[web.Request], web.Response]) -> Callable[[web.Request], web.StreamResponse]:
        async def wrapper(request: web.Request) -> web.Response:
            key = f"{request.method} {request.path}"
            hits[key] = hits.get(key, 0) + 1
            return handler(request)
        return wrapper

    def throttled_then_ok(request: web.Request) -> web.Response:
        if hits[f"{request.method} {request.path}"] <= 2:
            return web.json_response({"kind": "Status", "reason": "TooManyRequests", "message": "slow down"},
                                     status=429, headers={"Retry-After": "1"})
        return web.json_response(CONFIGMAP)

    def exists(_: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "reason": "AlreadyExists", "message": "exists"}, status=409)

    def forbidden(_: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "reason": "Forbidden", "message": "no"}, status=403)

    app = web.Application()
    app.router.add_get(CM_PATH, counted(throttled_then_ok))
    app.router.add_post("/api/v1/namespaces/ns/configmaps", counted(exists))
    app.router.add_get("/api/v1/namespaces/ns/secrets/forbidden", counted(forbidden))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(url=f"http://127.0.0.1:{port}", hits=hits)
    finally:
        await runner.cleanup()


async def test_429_is_retried_until_success(server: Server) -> None:
    client = client_for(server.url)
    try:
        got = await client.get("v1", "ConfigMap", "ns", "cm")
    finally:
        await client.close()
    assert got == CONFIGMAP
    assert client.requests["get"] == 3  # two throttled attempts, then the answer
    assert server.hits[f"GET {CM_PATH}"] == 3


async def test_429_beyond_max_retries_is_returned_as_an_error(server: Server) -> None:
    client = client_for(server.url, max_retries=1)
    try:
        with pytest.raises(ApiError) as raised:
            await client.get("v1", "ConfigMap", "ns", "cm")
    finally:
        await client.close()
    assert raised.value.status == 429 and raised.value.reason == "TooManyRequests"
    assert client.requests["get"] == 2


async def test_create_conflict_means_it_exists(server: Server) -> None:
    client = client_for(server.url)
    try:
        assert await client.create(CONFIGMAP) is None
    finally:
        await client.close()
    assert client.requests["create"] == 1  # a 409 is an answer, not a reason to retry


async def test_403_raises_without_retry(server: Server) -> None:
    client = client_for(server.url)
    try:
        with pytest.raises(ApiError) as raised:
            await client.get("v1", "Secret", "ns", "forbidden")
    finally:
        await client.close()
    assert raised.value.status == 403 and raised.value.reason == "Forbidden"
    assert client.requests["get"] == 1 and server.hits["GET /api/v1/namespaces/ns/secrets/forbidden"] == 1


async def test_connection_refused_raises_api_error_after_retries() -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        client = client_for(f"http://127.0.0.1:{port}", max_retries=2)
        try:
            with pytest.raises(ApiError) as raised:
                await client.get("v1", "ConfigMap", "ns", "cm")
        finally:
            await client.close()
    assert raised.value.status == 0 and raised.value.reason == "Unreachable"
    assert client.requests["get"] == 3
