"""Operator start-up and shutdown: kopf's settings, then the pieces of the memo that need the
running event loop (the API client, the work queue's workers, the Lease, the probes), in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from typing import Any

import kopf

from ..api.identity import FINALIZER, GROUP
from ..kube.client import KubeClient
from ..kube.leader import LeaderElector
from ..kube.probes import serve_probes
from ..reconcile.context import Context
from ..reconcile.dispatch import reconcile_key
from ..reconcile.tool_discovery import ToolDiscovery
from ..rollout import PrometheusProvider
from .memo import OperatorMemo

log = logging.getLogger("agentfleet")


def _configure_kopf(settings: kopf.OperatorSettings) -> None:
    # Our own prefixes: nothing of kopf's default (kopf.zalando.org) lands on user objects.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 60
    settings.peering.standalone = True


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: OperatorMemo, **kwargs: Any) -> None:
    _configure_kopf(settings)
    config = memo.config
    # Among its kwargs kopf hands the startup handler every index (still empty); they fill in place.
    memo.store.attach(kwargs)
    client = KubeClient.from_environment(log_writes=config.log_writes)
    ctx = Context(
        client=client,
        config=config,
        store=memo.store,
        enqueue=memo.queue.add,
        analysis=PrometheusProvider(),
        discovery=ToolDiscovery(interval=config.mcp_discovery_seconds),
    )
    memo.ctx = ctx

    async def reconcile(key: Hashable) -> float | None:
        return await reconcile_key(ctx, key)

    if config.leader_elect:
        # Events are queued from the start; workers run only while this replica holds the lease.
        elector = LeaderElector(
            client, config.lease_namespace, "agentfleet-operator", config.identity, lease_seconds=config.lease_seconds
        )

        async def started() -> None:
            memo.queue.start(reconcile)

        async def stopped() -> None:
            await memo.queue.stop()

        memo.elector = elector
        memo.election = asyncio.create_task(elector.run(started, stopped), name="leader-election")
    else:
        memo.queue.start(reconcile)
    if config.health_port:
        memo.probes = await serve_probes(config.health_port, lambda: memo.store.ready, lambda: len(memo.queue))
    log.info("agentfleet operator started (runtime image %s)", config.runtime_image)


@kopf.on.cleanup()
async def cleanup(memo: OperatorMemo, **_: Any) -> None:
    if memo.election is not None and memo.elector is not None:
        memo.election.cancel()
        await memo.elector.release()
    await memo.queue.stop()
    if memo.probes is not None:
        await memo.probes.cleanup()
    if memo.ctx is not None:
        await memo.ctx.discovery.aclose()
        await memo.ctx.client.close()
    memo.election = memo.elector = memo.probes = memo.ctx = None


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # The same credentials the operator's own client uses: in-cluster ServiceAccount or KUBECONFIG.
    return kopf.login_via_client(**kwargs)
