"""An async client for exactly the requests the operator makes: server-side apply with one field
manager, create-if-absent, delete, status patches, events and reads.

Why not the `kubernetes` package's client for these: it is synchronous (it would need a thread per
request inside kopf's event loop) and its server-side apply goes through discovery. An async
client with keep-alive does the same with less latency; the `kubernetes` package still loads the
credentials. The transport is aiohttp (already there: kopf runs on it) rather than httpx: profiling
a 500-Agent fleet showed httpx's per-request bookkeeping as the largest share of the operator's CPU
(bench/README.md), and aiohttp does the same requests for a fraction of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import ssl
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes import config as kube_config
from kubernetes.client import Configuration

from ..api.identity import (
    API_VERSION,
    EVENT_REPORTING_COMPONENT,
    MANAGER,
    PLURAL_AGENTS,
    PLURAL_CONNECTORS,
    PLURAL_STATE_POLICIES,
)

log = logging.getLogger(__name__)

# (apiVersion, kind) → plural; the operator only touches these kinds.
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "Event"): "events",
    ("v1", "Pod"): "pods",  # read only: why an Agent's pods cannot start (builders/pod_health.py)
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    (API_VERSION, "Agent"): PLURAL_AGENTS,
    (API_VERSION, "Connector"): PLURAL_CONNECTORS,
    (API_VERSION, "StatePolicy"): PLURAL_STATE_POLICIES,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproutes",
}

_json_dumps = json.dumps
RETRYABLE = {429, 500, 502, 503, 504}
WRITE_VERBS = {"create", "patch", "apply", "delete", "update"}


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def namespace_terminating(self) -> bool:
        """A create in a namespace being deleted is refused (403, reason Forbidden, cause
        NamespaceTerminating); everything in it is going away, so there is nothing to restore."""
        return self.status == 403 and "being terminated" in self.message


def path_for(api_version: str, kind: str, namespace: str | None, name: str | None = None, sub: str = "") -> str:
    plural = PLURALS[(api_version, kind)]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path


@dataclass
class Credentials:
    host: str
    verify: ssl.SSLContext | bool
    headers: dict[str, str]
    token_file: str | None = None


def load_credentials() -> Credentials:
    """In-cluster ServiceAccount when running in a pod, else the kubeconfig (KUBECONFIG)."""
    cfg = Configuration()
    token_file = None
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        kube_config.load_incluster_config(client_configuration=cfg)
        token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    else:
        kube_config.load_kube_config(client_configuration=cfg)
    context: ssl.SSLContext | bool
    if cfg.verify_ssl:
        cafile = cfg.ssl_ca_cert or None
        context = ssl.create_default_context(cafile=cafile)
    else:
        context = False
    if cfg.cert_file and isinstance(context, ssl.SSLContext):
        context.load_cert_chain(cfg.cert_file, cfg.key_file)
    headers = {}
    auth = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if auth:
        prefix = cfg.api_key_prefix.get("authorization", "")
        headers["Authorization"] = f"{prefix} {auth}".strip() if prefix else auth
    return Credentials(host=cfg.host, verify=context, headers=headers, token_file=token_file)


@dataclass
class Response:
    """A fully read response: what the callers need of it and nothing bound to the connection."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
BACKOFF_START = 0.2
BACKOFF_CAP = 10.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds the server asked us to wait. The API server (max-in-flight, priority and fairness)
    sends whole seconds; the HTTP-date form is never sent by it and is ignored rather than guessed."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def retry_wait(delay: float, retry_after: float | None) -> float:
    """The wait before the next attempt: the exponential step with jitter, which keeps a fleet from
    retrying in step. A Retry-After is a floor, not a hint: the jitter goes on top of it, so no
    attempt comes sooner than the server asked, and clients throttled together still spread out."""
    jittered = delay * (0.5 + random.random())
    if retry_after is None:
        return jittered
    return max(retry_after + delay * random.random(), jittered)


class KubeClient:
    """Counts its requests by verb, so tests and benchmarks can prove a no-op reconcile writes nothing."""

    def __init__(
        self, credentials: Credentials, *, max_retries: int = 5, max_connections: int = 32, log_writes: bool = False
    ) -> None:
        self._credentials = credentials
        self._base = credentials.host.rstrip("/")
        self._headers = dict(credentials.headers)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None  # made lazily: it needs the running loop
        self._max_retries = max_retries
        self.requests: Counter[str] = Counter()
        self._token_mtime = 0.0
        # Troubleshooting aid: log every write request (OperatorConfig.log_writes); never bodies.
        self.log_writes = log_writes

    @classmethod
    def from_environment(cls, *, log_writes: bool = False) -> KubeClient:
        return cls(load_credentials(), log_writes=log_writes)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=self._credentials.verify),
                timeout=aiohttp.ClientTimeout(total=30.0, connect=10.0),
                skip_auto_headers=("User-Agent",),
                headers={"User-Agent": f"{MANAGER}-operator"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _refresh_token(self) -> None:
        # Projected ServiceAccount tokens rotate; re-read the file when it changes.
        path = self._credentials.token_file
        if not path:
            return
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return
        if mtime != self._token_mtime:
            with open(path) as handle:
                self._headers["Authorization"] = f"Bearer {handle.read().strip()}"
            self._token_mtime = mtime

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body: bytes | None = None
        merged = dict(self._headers)
        if headers:
            merged.update(headers)
        if json is not None:
            body = _json_dumps(json).encode()
            merged.setdefault("Content-Type", "application/json")
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        async with self._http().request(
            method, self._base + path, params=params, data=body, headers=merged
        ) as response:
            return Response(response.status, response.headers, await response.read())

    async def _request(self, verb: str, method: str, path: str, **kwargs: Any) -> Response:
        self._refresh_token()
        delay = BACKOFF_START
        for attempt in range(self._max_retries + 1):
            self.requests[verb] += 1
            if verb in WRITE_VERBS and self.log_writes:
                log.info("write: %s %s %s", verb, method, path)
            retry_after: float | None = None
            try:
                response = await self._send(method, path, **kwargs)
            except TRANSPORT_ERRORS as exc:
                if attempt == self._max_retries:
                    raise ApiError(0, "Unreachable", str(exc)) from exc
                log.warning("API server unreachable (%s); retrying", exc.__class__.__name__)
            else:
                if response.status_code not in RETRYABLE or attempt == self._max_retries:
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            await asyncio.sleep(retry_wait(delay, retry_after))
            delay = min(delay * 2, BACKOFF_CAP)
        raise AssertionError("unreachable")

    @staticmethod
    def _raise_for(response: Response) -> None:
        if response.status_code < 400:
            return
        try:
            body = response.json()
            raise ApiError(response.status_code, body.get("reason", ""), body.get("message", response.text))
        except ValueError:
            raise ApiError(response.status_code, "", response.text) from None

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        response = await self._request("get", "GET", path_for(api_version, kind, namespace, name))
        if response.status_code == 404:
            return None
        self._raise_for(response)
        return response.json()

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        response = await self._request("list", "GET", path_for(api_version, kind, namespace), params=params)
        self._raise_for(response)
        return response.json().get("items", [])

    async def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """Pods by label, only ever read: the operator never creates, changes or deletes a pod."""
        return await self.list("v1", "Pod", namespace, label_selector)

    async def apply(self, obj: dict[str, Any], *, manager: str = MANAGER) -> dict[str, Any]:
        """Server-side apply with the operator's one field manager; force, because the operator is
        the only rightful owner of the fields it sets (a hand edit of them is drift to undo).
        `manager` is another name only for handing a field over (builders/replicas.py)."""
        meta = obj["metadata"]
        path = path_for(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        response = await self._request(
            "apply",
            "PATCH",
            path,
            params={"fieldManager": manager, "force": "true"},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        self._raise_for(response)
        return response.json()

    async def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create if absent; None when it already exists (never overwrites, e.g. a generated key)."""
        meta = obj["metadata"]
        path = path_for(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        response = await self._request("create", "POST", path, params={"fieldManager": MANAGER}, json=obj)
        if response.status_code == 409:
            return None
        self._raise_for(response)
        return response.json()

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        response = await self._request(
            "delete",
            "DELETE",
            path_for(api_version, kind, namespace, name),
            json={"propagationPolicy": "Background"},
        )
        if response.status_code == 404:
            return False
        self._raise_for(response)
        return True

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Merge patch on the status subresource; the operator never writes a user's spec."""
        response = await self._request(
            "patch",
            "PATCH",
            path_for(api_version, kind, namespace, name, "status"),
            content=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code == 404:
            return None
        self._raise_for(response)
        return response.json()

    async def patch(
        self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        response = await self._request(
            "patch",
            "PATCH",
            path_for(api_version, kind, namespace, name),
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code == 404:
            return None
        self._raise_for(response)
        return response.json()

    async def json_patch(
        self, api_version: str, kind: str, namespace: str, name: str, operations: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        response = await self._request(
            "patch",
            "PATCH",
            path_for(api_version, kind, namespace, name),
            content=json.dumps(operations),
            headers={"Content-Type": "application/json-patch+json"},
        )
        if response.status_code == 404:
            return None
        self._raise_for(response)
        return response.json()

    def writes(self) -> int:
        return sum(count for verb, count in self.requests.items() if verb in WRITE_VERBS)


async def post_event(
    client: KubeClient, involved: dict[str, Any], type_: str, reason: str, message: str, now: str, *, instance: str
) -> None:
    """A core/v1 Event about one of our objects. Best effort: a lost event must not fail a reconcile."""
    meta = involved["metadata"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": MANAGER},
        "reportingComponent": EVENT_REPORTING_COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        response = await client._request("create", "POST", path_for("v1", "Event", meta["namespace"]), json=event)
        client._raise_for(response)
    except ApiError as exc:
        # Expected while a namespace is deleted (its Agents' last reconciles still report): not a warning.
        level = logging.DEBUG if exc.namespace_terminating else logging.WARNING
        log.log(level, "could not post event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], exc)
