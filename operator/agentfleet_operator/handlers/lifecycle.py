"""Operator start-up and shutdown: kopf settings, the API client, the work queue, probes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Hashable
from typing import Any

import kopf
from aiohttp import web

from ..kube.client import KubeClient
from ..kube.leader import LeaderElector
from ..reconcile import metrics
from ..reconcile.agent import reconcile_agent
from ..reconcile.connector import reconcile_connector
from ..reconcile.context import Context, Settings
from ..reconcile.queue import WorkQueue
from ..reconcile.statepolicy import reconcile_state_policy
from ..reconcile.store import STORE
from ..rollout import PrometheusProvider
from .queue_ref import set_queue

log = logging.getLogger("agentfleet")

_state: dict[str, Any] = {}


async def _dispatch(key: Hashable) -> float | None:
    ctx: Context = _state["ctx"]
    kind, namespace, name = key  # type: ignore[misc]
    try:
        if kind == "Agent":
            before = STORE._dependencies.get((namespace, name), set()).copy()
            requeue = await reconcile_agent(ctx, namespace, name)
            after = STORE._dependencies.get((namespace, name), set())
            for dep_kind, ns, dep in before ^ after:  # their usedBy changed
                if dep_kind in ("Connector", "StatePolicy"):
                    _state["queue"].add((dep_kind, ns, dep))
            return requeue
        if kind == "Connector":
            return await reconcile_connector(ctx, namespace, name)
        if kind == "StatePolicy":
            return await reconcile_state_policy(ctx, namespace, name)
        return None
    finally:
        metrics.export_api_requests(ctx.client.requests)


async def _probe_server(port: int) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready = STORE.ready and "queue" in _state
        return web.json_response({"ready": ready, "queued": len(_state.get("queue") or ())},
                                 status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our own prefixes: nothing of kopf's default (kopf.zalando.org) lands on user objects.
    settings.persistence.finalizer = "agentfleet.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="agentfleet.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="agentfleet.dev")
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 60
    settings.peering.standalone = True
    client = KubeClient.from_environment()
    ctx = Context(client=client, analysis=PrometheusProvider(), settings=Settings(
        runtime_image=os.environ.get("AGENTFLEET_RUNTIME_IMAGE", Settings.runtime_image),
        redis_image=os.environ.get("AGENTFLEET_REDIS_IMAGE", Settings.redis_image),
    ))
    queue = WorkQueue(_dispatch, workers=int(os.environ.get("AGENTFLEET_WORKERS", "8")))
    _state.update(ctx=ctx, queue=queue)
    set_queue(queue)
    if os.environ.get("AGENTFLEET_LEADER_ELECT") == "1":
        # Events are queued from the start; workers run only while this replica holds the lease.
        identity = f"{os.environ.get('HOSTNAME', socket.gethostname())}-{os.getpid()}"
        elector = LeaderElector(client, os.environ.get("POD_NAMESPACE", "agentfleet-system"),
                                "agentfleet-operator", identity,
                                lease_seconds=int(os.environ.get("AGENTFLEET_LEASE_SECONDS", "15")))

        async def started() -> None:
            queue.start()

        async def stopped() -> None:
            await queue.stop()

        _state["elector"] = elector
        _state["election"] = asyncio.create_task(elector.run(started, stopped), name="leader-election")
    else:
        queue.start()
    health_port = int(os.environ.get("AGENTFLEET_HEALTH_PORT", "8081"))
    if health_port:
        _state["probes"] = await _probe_server(health_port)
    log.info("agentfleet operator started (runtime image %s)", ctx.settings.runtime_image)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    set_queue(None)
    if "election" in _state:
        _state["election"].cancel()
        await _state["elector"].release()
    if "queue" in _state:
        await _state["queue"].stop()
    if "probes" in _state:
        await _state["probes"].cleanup()
    if "ctx" in _state:
        await _state["ctx"].client.close()
    _state.clear()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # The same credentials the operator's own client uses: in-cluster ServiceAccount or KUBECONFIG.
    return kopf.login_via_client(**kwargs)
