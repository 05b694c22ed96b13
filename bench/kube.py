"""The benchmark's own access to the cluster: an async httpx client per kubeconfig, kubectl, a
list-then-watch waiter (one stream, never per-object GETs) and namespace clean-up."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import config as kube_config
from kubernetes.client import Configuration

BENCH_LABEL = "agentfleet.dev/bench"
GROUP_PATH = "/apis/agentfleet.dev/v1alpha1"


def http_client(kubeconfig: str, *, max_connections: int = 32) -> httpx.AsyncClient:
    """The same credential handling as the operator's KubeClient, from one kubeconfig file."""
    cfg = Configuration()
    kube_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    verify: ssl.SSLContext | bool = False
    if cfg.verify_ssl:
        verify = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if cfg.cert_file:
            verify.load_cert_chain(cfg.cert_file, cfg.key_file)
    headers = {}
    auth = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if auth:
        prefix = cfg.api_key_prefix.get("authorization", "")
        headers["Authorization"] = f"{prefix} {auth}".strip() if prefix else auth
    return httpx.AsyncClient(
        base_url=cfg.host,
        verify=verify,
        headers=headers,
        timeout=httpx.Timeout(60.0, connect=10.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )


def kubectl(
    kubeconfig: str, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args], input=stdin, text=True, capture_output=True, check=check
    )


def serviceaccount_kubeconfig(admin: str, namespace: str, name: str, out: Path) -> str:
    """A kubeconfig acting as a ServiceAccount (token only), as the integration tests run the operator."""
    token = kubectl(admin, "create", "token", name, "-n", namespace, "--duration=4h").stdout.strip()
    config = yaml.safe_load(Path(admin).read_text())
    cluster = config["clusters"][0]
    user = f"{namespace}-{name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
        "users": [{"name": user, "user": {"token": token}}],
    }
    out.write_text(yaml.safe_dump(doc))
    return str(out)


def check(response: httpx.Response, *ok: int) -> httpx.Response:
    if response.status_code >= 400 and response.status_code not in ok:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:500]}"
        )
    return response


async def wait_all(
    client: httpx.AsyncClient,
    path: str,
    done: Callable[[dict[str, Any]], bool],
    expected: int,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout: float = 900.0,
) -> float:
    """LIST once, then one WATCH stream from its resourceVersion, until `expected` objects satisfy
    `done`. Returns time.monotonic() of the moment the last one did."""
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    deadline = time.monotonic() + timeout
    state: dict[str, bool] = {}
    resource_version = ""

    def key(obj: dict[str, Any]) -> str:
        return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"

    while True:
        if not resource_version:
            listing = check(await client.get(path, params=params)).json()
            state = {key(obj): done(obj) for obj in listing.get("items", [])}
            resource_version = listing["metadata"]["resourceVersion"]
        if sum(state.values()) >= expected:
            return time.monotonic()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{sum(state.values())}/{expected} done on {path} after {timeout:.0f}s")
        watch = dict(
            params,
            watch="1",
            resourceVersion=resource_version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(int(min(remaining, 290)) + 1),
        )
        try:
            async with client.stream("GET", path, params=watch, timeout=httpx.Timeout(None, connect=10)) as stream:
                async for line in stream.aiter_lines():
                    if not line:
                        continue
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        resource_version = ""  # e.g. 410 Gone: list again
                        break
                    resource_version = obj["metadata"].get("resourceVersion", resource_version)
                    if event["type"] == "BOOKMARK":
                        continue
                    if event["type"] == "DELETED":
                        state.pop(key(obj), None)
                    else:
                        state[key(obj)] = done(obj)
                    if sum(state.values()) >= expected:
                        return time.monotonic()
        except httpx.TransportError:
            await asyncio.sleep(0.2)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == type_:
            return cond
    return {}


def agent_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return condition(obj, "Ready").get("status") == "True" and status.get("observedGeneration") == obj["metadata"].get(
        "generation"
    )


def deployment_available(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    want = obj.get("spec", {}).get("replicas", 1)
    return (
        status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        and status.get("availableReplicas", 0) >= want
        and status.get("updatedReplicas", 0) >= want
    )


async def delete_bench_namespaces(admin: httpx.AsyncClient, timeout: float = 600.0) -> float:
    """Delete every benchmark namespace and wait until they are gone; returns the seconds it took."""
    started = time.monotonic()
    params = {"labelSelector": BENCH_LABEL}
    listing = check(await admin.get("/api/v1/namespaces", params=params)).json()
    names = [ns["metadata"]["name"] for ns in listing["items"]]
    await asyncio.gather(*(admin.delete(f"/api/v1/namespaces/{name}") for name in names))
    while names:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"namespaces not gone after {timeout:.0f}s: {names[:5]}")
        await asyncio.sleep(1.0)
        names = [
            ns["metadata"]["name"] for ns in check(await admin.get("/api/v1/namespaces", params=params)).json()["items"]
        ]
    return time.monotonic() - started
