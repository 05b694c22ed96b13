"""KubeClient against a tiny local HTTP server: which answers it retries, which it returns, which it raises,
and how long it waits before each retry (asyncio.sleep is patched, so the waits are read, never lived)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from agentfleet_operator.kube.client import ApiError, Credentials, KubeClient
from aiohttp import web

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}, "data": {}}
CM_PATH = "/api/v1/namespaces/ns/configmaps/cm"
# Throttled with a Retry-After longer than the client's own backoff ever grows (10 s cap), five times.
SLOW_PATH = "/api/v1/namespaces/ns/configmaps/slow"
SLOW_RETRY_AFTER = 12
# Failing with 500 and no Retry-After, twice: the client's own backoff alone decides the waits.
FLAKY_PATH = "/api/v1/namespaces/ns/configmaps/flaky"


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
            return web.json_response(
                {"kind": "Status", "reason": "TooManyRequests", "message": "slow down"},
                status=429,
                headers={"Retry-After": "1"},
            )
        return web.json_response(CONFIGMAP)

    def throttled_long(request: web.Request) -> web.Response:
        if hits[f"{request.method} {request.path}"] <= 5:
            return web.json_response(
                {"kind": "Status", "reason": "TooManyRequests", "message": "slow down"},
                status=429,
                headers={"Retry-After": str(SLOW_RETRY_AFTER)},
            )
        return web.json_response(CONFIGMAP)

    def failing_then_ok(request: web.Request) -> web.Response:
        if hits[f"{request.method} {request.path}"] <= 2:
            return web.json_response({"kind": "Status", "reason": "InternalError", "message": "oops"}, status=500)
        return web.json_response(CONFIGMAP)

    def exists(_: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "reason": "AlreadyExists", "message": "exists"}, status=409)

    def forbidden(_: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "reason": "Forbidden", "message": "no"}, status=403)

    app = web.Application()
    app.router.add_get(CM_PATH, counted(throttled_then_ok))
    app.router.add_get(SLOW_PATH, counted(throttled_long))
    app.router.add_get(FLAKY_PATH, counted(failing_then_ok))
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


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every non-zero wait anything in this process asks asyncio for, in order; none is actually waited.
    Zero-length sleeps are aiohttp yielding to the loop, not a retry wait, so they pass through."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, result: object = None) -> object:
        if delay > 0:
            recorded.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    return recorded


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999], ids=["lowest-jitter", "mid-jitter", "highest-jitter"])
async def test_429_waits_at_least_retry_after_before_each_retry(
    server: Server, sleeps: list[float], monkeypatch: pytest.MonkeyPatch, jitter: float
) -> None:
    # Jitter pinned at each end of its range: the server's ask is a floor the jitter may never cut into.
    monkeypatch.setattr(random, "random", lambda: jitter)
    client = client_for(server.url)
    try:
        got = await client.get("v1", "ConfigMap", "ns", "cm")
    finally:
        await client.close()
    assert got == CONFIGMAP
    assert server.hits[f"GET {CM_PATH}"] == 3
    assert len(sleeps) == 2, sleeps  # one wait before each of the two retries
    assert all(wait >= 1.0 for wait in sleeps), f"retried sooner than Retry-After: 1 asked: {sleeps}"


async def test_retry_after_beyond_the_backoff_cap_is_still_honoured(
    server: Server, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.0)
    client = client_for(server.url)
    try:
        got = await client.get("v1", "ConfigMap", "ns", "slow")
    finally:
        await client.close()
    assert got == CONFIGMAP
    assert len(sleeps) == 5, sleeps
    assert all(wait >= SLOW_RETRY_AFTER for wait in sleeps), f"Retry-After: {SLOW_RETRY_AFTER} cut short: {sleeps}"


async def test_without_retry_after_the_client_backs_off_in_doubling_steps(
    server: Server, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.5)  # jitter factor exactly 1: the bare steps show
    client = client_for(server.url)
    try:
        got = await client.get("v1", "ConfigMap", "ns", "flaky")
    finally:
        await client.close()
    assert got == CONFIGMAP
    assert sleeps == pytest.approx([0.2, 0.4])


async def test_429_is_retried_until_success(server: Server, sleeps: list[float]) -> None:
    client = client_for(server.url)
    try:
        got = await client.get("v1", "ConfigMap", "ns", "cm")
    finally:
        await client.close()
    assert got == CONFIGMAP
    assert client.requests["get"] == 3  # two throttled attempts, then the answer
    assert server.hits[f"GET {CM_PATH}"] == 3


async def test_429_beyond_max_retries_is_returned_as_an_error(server: Server, sleeps: list[float]) -> None:
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
