"""The operator's /healthz and /readyz, for the kubelet's probes and for the tests that wait on them.

/readyz says whether the in-memory view is complete and how many keys the work queue holds, so a
test (or a human) can wait for "nothing left to reconcile" instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


async def serve_probes(port: int, ready: Callable[[], bool], queued: Callable[[], int]) -> web.AppRunner:
    """Started on 0.0.0.0:port; the caller owns the returned runner and cleans it up."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        is_ready = ready()
        return web.json_response({"ready": is_ready, "queued": queued()}, status=200 if is_ready else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
