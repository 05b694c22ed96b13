"""The operator's benchmarks on the local control plane: fleet (N Agents to Ready), steady state
(idle writes and a forced resync), change latency (one prompt edit among N)."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.integration.operator_harness import OperatorProcess

from .kube import BENCH_LABEL, GROUP_PATH, agent_ready, check, wait_all
from .machine import ProcessSampler

AGENTS_PER_NAMESPACE = 100
CONCURRENCY = 8  # the operator's default number of workers; the baseline uses the same
WRITE_VERBS = ("apply", "create", "patch", "delete", "update")


@dataclass
class Fleet:
    """N rules Agents spread over namespaces of 100, each namespace with one Connector (bearer auth,
    one Secret) and one memory StatePolicy that every Agent of it references."""

    run: str
    size: int
    namespaces: list[str] = field(default_factory=list)
    agents: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name)
    created: list[dict[str, Any]] = field(default_factory=list)  # Agents as the API server returned them

    def __post_init__(self) -> None:
        count = (self.size + AGENTS_PER_NAMESPACE - 1) // AGENTS_PER_NAMESPACE
        self.namespaces = [f"bench-{self.run}-{i}" for i in range(count)]
        self.agents = [(self.namespaces[i // AGENTS_PER_NAMESPACE], f"agent-{i:04d}") for i in range(self.size)]


def namespace_manifest(name: str, run: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {BENCH_LABEL: run}}}


def secret_manifest() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "crm-token"}, "stringData": {"token": "t0ken"}}


def connector_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Connector",
        "metadata": {"name": "crm"},
        "spec": {
            "type": "http",
            "endpoint": "https://crm.example.com/api",
            "auth": {"type": "bearer", "secretRef": {"name": "crm-token"}},
            "tools": [{"name": "lookup_customer", "method": "GET", "path": "/customers"}],
        },
    }


def state_policy_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "StatePolicy",
        "metadata": {"name": "sessions"},
        "spec": {"store": {"type": "memory"}},
    }


def agent_manifest(name: str, run: str) -> dict[str, Any]:
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name, "labels": {BENCH_LABEL: run}},
        "spec": {
            "model": {"provider": "rules", "name": "greeter", "rules": [{"pattern": "\\bhello\\b", "reply": "Hello!"}]},
            "prompt": {"system": "You greet people."},
            "connectors": [{"name": "crm"}],
            "statePolicyRef": {"name": "sessions"},
            "replicas": 1,
        },
    }


async def create_fixtures(admin: httpx.AsyncClient, fleet: Fleet) -> None:
    async def one(ns: str) -> None:
        check(await admin.post("/api/v1/namespaces", json=namespace_manifest(ns, fleet.run)), 409)
        check(await admin.post(f"/api/v1/namespaces/{ns}/secrets", json=secret_manifest()), 409)
        check(await admin.post(f"{GROUP_PATH}/namespaces/{ns}/connectors", json=connector_manifest()), 409)
        check(await admin.post(f"{GROUP_PATH}/namespaces/{ns}/statepolicies", json=state_policy_manifest()), 409)

    await asyncio.gather(*(one(ns) for ns in fleet.namespaces))


async def create_agents(
    admin: httpx.AsyncClient, fleet: Fleet, sink: asyncio.Queue[dict[str, Any] | None] | None = None
) -> None:
    """POST every Agent, CONCURRENCY at a time; each created object also goes to `sink`."""
    pending = list(fleet.agents)

    async def worker() -> None:
        while pending:
            ns, name = pending.pop(0)
            created = check(
                await admin.post(f"{GROUP_PATH}/namespaces/{ns}/agents", json=agent_manifest(name, fleet.run))
            ).json()
            fleet.created.append(created)
            if sink is not None:
                await sink.put(created)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def writes_of(requests: dict[str, float]) -> float:
    return sum(v for k, v in requests.items() if k in WRITE_VERBS)


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {
        k: int(after.get(k, 0) - before.get(k, 0))
        for k in sorted(set(after) | set(before))
        if after.get(k, 0) - before.get(k, 0)
    }


def start_operator(kubeconfig: str, log_path: Path) -> tuple[OperatorProcess, ProcessSampler]:
    operator = OperatorProcess(kubeconfig, log_path).start(timeout=120)
    assert operator.process is not None
    return operator, ProcessSampler(operator.process.pid)


def queued(operator: OperatorProcess) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/readyz", timeout=2) as response:
            return int(json.loads(response.read()).get("queued", 0))
    except OSError:
        return -1


async def wait_drained(operator: OperatorProcess, quiet: float = 3.0, timeout: float = 600.0) -> float:
    """Until the work queue has stayed empty for `quiet` seconds; returns when it first became empty."""
    deadline = time.monotonic() + timeout
    empty_since: float | None = None
    while time.monotonic() < deadline:
        if queued(operator) == 0:
            empty_since = empty_since or time.monotonic()
            if time.monotonic() - empty_since >= quiet:
                return empty_since
        else:
            empty_since = None
        await asyncio.sleep(0.25)
    raise TimeoutError("operator queue never drained")


async def fleet_operator(
    admin: httpx.AsyncClient, operator: OperatorProcess, sampler: ProcessSampler, size: int
) -> dict[str, Any]:
    fleet = Fleet("op", size)
    await create_fixtures(admin, fleet)
    await asyncio.sleep(1.0)  # let the operator see the Connectors/StatePolicies first, as in real life
    before, cpu_before = operator.api_requests(), sampler.cpu_seconds()
    started = time.monotonic()
    waiter = asyncio.create_task(
        wait_all(admin, f"{GROUP_PATH}/agents", agent_ready, size, label_selector=f"{BENCH_LABEL}=op", timeout=1800)
    )
    await create_agents(admin, fleet)
    created = time.monotonic()
    done = await waiter
    after, cpu_after = operator.api_requests(), sampler.cpu_seconds()
    requests = delta(after, before)
    return {
        "agents": size,
        "ready": size,
        "seconds": round(done - started, 2),
        "create_seconds": round(created - started, 2),
        "api_requests": requests,
        "api_writes": int(writes_of(requests)),
        "api_requests_per_agent": round(sum(requests.values()) / size, 2),
        "peak_rss_mib": round(sampler.peak_rss_mib(), 1),
        "rss_mib_after": round(sampler.rss_mib(), 1),
        "cpu_seconds": round(cpu_after - cpu_before, 2),
    }


def write_lines(operator: OperatorProcess) -> list[str]:
    return [line for line in operator.log_path.read_text(errors="replace").splitlines() if '"write: ' in line]


async def steady_state(
    operator: OperatorProcess, kubeconfig: str, log_dir: Path, idle: float, size: int
) -> tuple[dict[str, Any], OperatorProcess]:
    before, lines_before = operator.api_requests(), len(write_lines(operator))
    await asyncio.sleep(idle)
    after, lines = operator.api_requests(), write_lines(operator)
    idle_requests = delta(after, before)
    idle_lines = lines[lines_before:]
    operator.stop()
    started = time.monotonic()  # from the launch: listing everything is part of a resync
    resync_log = log_dir / "operator-resync.log"
    resync_log.unlink(missing_ok=True)  # an earlier run's lines are not this resync's writes
    restarted = OperatorProcess(kubeconfig, resync_log).start(timeout=180)
    assert restarted.process is not None
    sampler = ProcessSampler(restarted.process.pid)
    drained = await wait_drained(restarted)
    resync = restarted.api_requests()
    resync_lines = write_lines(restarted)
    return {
        "agents": size,
        "idle_seconds": idle,
        "idle_requests": idle_requests,
        "idle_writes": int(writes_of(idle_requests)),
        "idle_lease_requests": idle_requests.get("lease", 0),
        "idle_write_log_lines": len(idle_lines),
        "idle_write_examples": idle_lines[:5],
        "resync_seconds": round(drained - started, 2),
        "resync_requests": {k: int(v) for k, v in resync.items()},
        "resync_writes": int(writes_of(resync)),
        "resync_lease_requests": int(resync.get("lease", 0)),
        "resync_reconciles": reconciles(restarted),
        "resync_write_log_lines": len(resync_lines),
        "resync_write_examples": resync_lines[:5],
        "resync_peak_rss_mib": round(sampler.peak_rss_mib(), 1),
        "resync_cpu_seconds": round(sampler.cpu_seconds(), 2),
    }, restarted


def reconciles(operator: OperatorProcess) -> dict[str, int]:
    """Reconciles done by kind, from the operator's own counter."""
    counts: dict[str, int] = {}
    for match in re.finditer(
        r'^agentfleet_reconcile_total\{kind="(\w+)",result="(\w+)"\} ([0-9.e+]+)$', operator.metrics(), re.M
    ):
        key = f"{match.group(1)}:{match.group(2)}"
        counts[key] = counts.get(key, 0) + int(float(match.group(3)))
    return counts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def change_latency(admin: httpx.AsyncClient, size: int, edits: int) -> dict[str, Any]:
    fleet = Fleet("op", size)
    samples: list[float] = []
    step = max(1, size // edits)
    for i in range(edits):
        ns, name = fleet.agents[(i * step) % size]
        path = f"{GROUP_PATH}/namespaces/{ns}/agents/{name}"
        old = check(await admin.get(path)).json()
        old_revision = old["status"]["revision"]["stable"]
        patch = {"spec": {"prompt": {"system": f"You greet people. Edit {i} at {time.time():.3f}."}}}
        started = time.monotonic()
        check(await admin.patch(path, json=patch, headers={"Content-Type": "application/merge-patch+json"}))

        def done(obj: dict[str, Any], old_revision: str = old_revision) -> bool:
            return agent_ready(obj) and obj["status"].get("revision", {}).get("stable") not in ("", old_revision)

        finished = await wait_all(
            admin, f"{GROUP_PATH}/namespaces/{ns}/agents", done, 1, field_selector=f"metadata.name={name}", timeout=120
        )
        samples.append(finished - started)
        await asyncio.sleep(0.5)
    return {
        "agents": size,
        "edits": edits,
        "p50_seconds": round(statistics.median(samples), 3),
        "p95_seconds": round(percentile(samples, 95), 3),
        "max_seconds": round(max(samples), 3),
        "samples": [round(s, 3) for s in samples],
    }
