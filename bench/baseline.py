"""The limit the operator is measured against: the same children of the same Agents, written by a
plain async client with no operator logic (no watches, no indexes, no diffing), CONCURRENCY at a
time, then the same wait for every Deployment to be available.

The child objects come from the operator's own pure builders (agentfleet_operator.builders), fed by
its own resolve() over a hand-filled Store, so their shapes are byte-for-byte what the operator applies."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from typing import Any

import httpx
from agentfleet_operator.api.agent import AgentSpec
from agentfleet_operator.builders import agent_children as children
from agentfleet_operator.builders import names
from agentfleet_operator.builders.conditions import Cond, merge_conditions
from agentfleet_operator.builders.desired_children import ChildrenPlan, desired_children
from agentfleet_operator.builders.inputs import ResolvedAgent
from agentfleet_operator.builders.revision import revision_hash, secret_hash
from agentfleet_operator.builders.runtime_config import build_runtime_config, revision_inputs, secret_mounts
from agentfleet_operator.config import DEFAULT_RUNTIME_IMAGE
from agentfleet_operator.kube.client import path_for
from agentfleet_operator.reconcile.resolve import resolve
from agentfleet_operator.reconcile.store import Store

from .fleet import CONCURRENCY, Fleet, create_agents, create_fixtures
from .kube import GROUP_PATH, check, deployment_available, wait_all

APPLY = {"fieldManager": names.MANAGER, "force": "true"}


async def _store_for(admin: httpx.AsyncClient, fleet: Fleet) -> Store:
    """What the operator's indexes would hold for the fixtures (read once per namespace)."""
    store = Store()
    connectors: dict[Any, list[Any]] = {}
    policies: dict[Any, list[Any]] = {}
    secret_index: dict[Any, list[Any]] = {}
    for ns in fleet.namespaces:
        conn = check(await admin.get(f"{GROUP_PATH}/namespaces/{ns}/connectors/crm")).json()
        policy = check(await admin.get(f"{GROUP_PATH}/namespaces/{ns}/statepolicies/sessions")).json()
        token = check(await admin.get(f"/api/v1/namespaces/{ns}/secrets/crm-token")).json()
        connectors[(ns, "crm")] = [{"metadata": conn["metadata"], "spec": conn["spec"], "status": {}}]
        policies[(ns, "sessions")] = [{"metadata": policy["metadata"], "spec": policy["spec"], "status": {}}]
        secret_index[(ns, "crm-token")] = [{"hash": secret_hash(token["data"]), "keys": sorted(token["data"])}]
    store.indexes = {"connectors_idx": connectors, "statepolicies_idx": policies, "secrets_idx": secret_index}
    return store


def desired_for(
    base: Store, agent: dict[str, Any], access_key: str, image: str = DEFAULT_RUNTIME_IMAGE
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(access Secret, children to apply, status) exactly as reconcile_agent builds them."""
    meta = agent["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
    spec = AgentSpec.model_validate(agent["spec"])
    access_data = {"apiKey": base64.b64encode(access_key.encode()).decode()}
    secret_index = dict(base.indexes["secrets_idx"])
    secret_index[(ns, names.access_secret(name))] = [{"hash": secret_hash(access_data), "keys": ["apiKey"]}]
    store = Store()
    store.indexes = {**base.indexes, "secrets_idx": secret_index}
    res = resolve(store, ns, name, spec)
    assert not res.problems, res.problems
    stub = ResolvedAgent(name=name, namespace=ns, uid=uid, spec=spec, image="", prompt_text="")
    access = children.access_secret(stub, access_key)
    resolved = ResolvedAgent(
        name=name,
        namespace=ns,
        uid=uid,
        spec=spec,
        image=spec.image or image,
        prompt_text=res.prompt_text,
        connectors=tuple(res.connectors),
        state=res.state,
        access_secret=res.access_secret,
        secret_hashes=dict(res.secret_hashes),
    )
    revision = revision_hash(resolved.image, revision_inputs(resolved), resolved.secret_hashes)
    config = build_runtime_config(resolved, revision)
    mounts = {k: tuple(sorted(v)) for k, v in secret_mounts(resolved).items()}
    track = children.Track("stable", revision, resolved.image, mounts, replicas=children.desired_stable_replicas(spec))
    desired = desired_children(resolved, ChildrenPlan(current=track, config=config, tracks=(track,)))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    generation = meta.get("generation")
    status = {
        "phase": "Pending",
        "replicas": 0,
        "readyReplicas": 0,
        "ready": "0/1",
        "selector": f"{names.LABEL_AGENT}={name}",
        "endpoint": names.endpoint(name, ns),
        "revision": {"stable": revision, "canary": ""},
        "revisionHistory": [revision],
        "observedGeneration": generation,
        "conditions": merge_conditions(
            [],
            [
                Cond("Ready", False, "RolloutInProgress", "creating the Deployment"),
                Cond("Reconciling", True, "RolloutInProgress", "creating the Deployment"),
                Cond("Stalled", False, "Progressing"),
                Cond("ConnectorsReady", True, "Resolved", "1 resolved"),
                Cond("StateReady", True, "Resolved", "StatePolicy sessions resolved"),
                Cond("RolloutHealthy", True, "RolledOut", "no rollout in progress"),
            ],
            generation,
            now,
        ),
    }
    return access, desired, status


async def run_baseline(admin: httpx.AsyncClient, writer: httpx.AsyncClient, size: int) -> dict[str, Any]:
    """`writer` carries the operator's credentials (its ServiceAccount) and writes every child."""
    fleet = Fleet("base", size)
    await create_fixtures(admin, fleet)
    base = await _store_for(admin, fleet)
    requests: dict[str, int] = {"create": 0, "apply": 0, "patch": 0}
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def write(agent: dict[str, Any]) -> None:
        access, desired, status = desired_for(base, agent, secrets.token_urlsafe(32))
        ns = agent["metadata"]["namespace"]
        check(await writer.post(path_for("v1", "Secret", ns), params={"fieldManager": names.MANAGER}, json=access), 409)
        requests["create"] += 1
        for obj in desired:
            path = path_for(obj["apiVersion"], obj["kind"], ns, obj["metadata"]["name"])
            check(
                await writer.patch(
                    path,
                    params=APPLY,
                    content=json.dumps(obj),
                    headers={"Content-Type": "application/apply-patch+yaml"},
                )
            )
            requests["apply"] += 1
        check(
            await writer.patch(
                f"{GROUP_PATH}/namespaces/{ns}/agents/{agent['metadata']['name']}/status",
                content=json.dumps({"status": status}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
        )
        requests["patch"] += 1

    async def worker() -> None:
        while (agent := await queue.get()) is not None:
            await write(agent)

    started = time.monotonic()
    waiter = asyncio.create_task(
        wait_all(
            admin,
            "/apis/apps/v1/deployments",
            deployment_available,
            size,
            label_selector=f"{names.LABEL_MANAGED_BY}={names.MANAGER}",
            timeout=1800,
        )
    )
    workers = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    await create_agents(admin, fleet, sink=queue)
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)
    written = time.monotonic()
    done = await waiter
    return {
        "agents": size,
        "seconds": round(done - started, 2),
        "write_seconds": round(written - started, 2),
        "api_requests": requests,
        "concurrency": CONCURRENCY,
    }
