"""Leader election on a coordination.k8s.io Lease, so several operator replicas can run for HA while
only one reconciles. Standbys keep their watches and indexes warm, so a takeover needs no re-list:
it waits at most one lease duration after the leader stops renewing."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from .client import ApiError, KubeClient

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: int = 15,
        renew_seconds: float = 5.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.is_leader = asyncio.Event()

    def _path(self, with_name: bool = True) -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        return f"{base}/{self.name}" if with_name else base

    async def _try_acquire_or_renew(self) -> bool:
        now = _now()
        response = await self.client._request("lease", "GET", self._path())
        if response.status_code == 404:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": self.lease_seconds,
                    "acquireTime": _micro(now),
                    "renewTime": _micro(now),
                    "leaseTransitions": 0,
                },
            }
            created = await self.client._request("lease", "POST", self._path(False), json=body)
            return created.status_code < 300
        self.client._raise_for(response)
        lease = response.json()
        spec = lease.get("spec", {})
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = spec.get("leaseDurationSeconds") or self.lease_seconds
        expired = renewed is None or (now - renewed).total_seconds() > duration
        if holder not in (self.identity, None, "") and not expired:
            return False
        if holder != self.identity:
            spec["leaseTransitions"] = spec.get("leaseTransitions", 0) + 1
            spec["acquireTime"] = _micro(now)
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=self.lease_seconds, renewTime=_micro(now))
        lease["spec"] = spec
        # resourceVersion in the body makes this an optimistic update: two candidates cannot both win.
        updated = await self.client._request("lease", "PUT", self._path(), json=lease)
        return updated.status_code < 300

    async def run(self, on_started: Callable[[], Awaitable[None]], on_stopped: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                leading = await self._try_acquire_or_renew()
            except (ApiError, OSError) as exc:
                log.warning("leader election: %s", exc)
                leading = False
            if leading and not self.is_leader.is_set():
                log.info("became the leader (%s)", self.identity)
                self.is_leader.set()
                await on_started()
            elif not leading and self.is_leader.is_set():
                log.warning("lost the leadership (%s)", self.identity)
                self.is_leader.clear()
                await on_stopped()
            await asyncio.sleep(self.renew_seconds if leading else self.renew_seconds / 2)

    async def release(self) -> None:
        """Hand over at once on a clean shutdown instead of making the next leader wait for expiry."""
        if not self.is_leader.is_set():
            return
        try:
            response = await self.client._request("lease", "GET", self._path())
            if response.status_code == 200:
                lease = response.json()
                if lease.get("spec", {}).get("holderIdentity") == self.identity:
                    lease["spec"]["holderIdentity"] = ""
                    lease["spec"]["renewTime"] = None
                    await self.client._request("lease", "PUT", self._path(), json=lease)
        except (ApiError, OSError) as exc:
            log.warning("could not release the lease: %s", exc)
