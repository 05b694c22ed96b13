"""Read-only access to the operator's in-memory view of the cluster.

The view is kopf indexes (see handlers/indexes.py), which kopf fills from watch streams and fully
populates before any handler runs, so a reconcile never sees a half-listed cluster. The indexes
hold hashes for Secrets (never their values) and trimmed bodies for everything else.

One Store per operator process, made in main.py and handed to the handlers through kopf's memo.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

Key = tuple[str, str]  # (namespace, name)
Dependency = tuple[str, str, str]  # (kind, namespace, name)


def usage_changed(changed: set[Dependency]) -> list[Dependency]:
    """Of the dependencies an Agent gained or dropped, those whose status counts their users
    (`status.usedBy`): each needs a reconcile of its own."""
    return sorted(dep for dep in changed if dep[0] in ("Connector", "StatePolicy"))


class Store:
    def __init__(self) -> None:
        self.indexes: dict[str, Mapping[Any, Any]] = {}
        # dependency (kind, namespace, name) → Agents (namespace, name) that read it; refreshed per reconcile
        self._dependents: dict[tuple[str, str, str], set[Key]] = defaultdict(set)
        self._dependencies: dict[Key, set[tuple[str, str, str]]] = {}
        self._written: dict[Key, tuple[str, dict[str, Any]]] = {}
        self._listed = False

    def attach(self, indexes: Mapping[str, Mapping[Any, Any]]) -> None:
        """kopf's live indexes (the startup handler gets them all, still empty); kopf keeps them filled."""
        self.indexes = {name: index for name, index in indexes.items() if name.endswith("_idx")}

    def mark_listed(self) -> None:
        """kopf runs no event handler before every index is fully listed; the first one calls this."""
        self._listed = True

    @property
    def ready(self) -> bool:
        return self._listed and bool(self.indexes)

    def _one(self, index: str, key: Any) -> Any | None:
        idx = self.indexes.get(index)
        if idx is None:
            return None
        values = idx.get(key)
        if not values:
            return None
        for value in values:
            return value
        return None

    def _many(self, index: str, key: Any) -> list[Any]:
        idx = self.indexes.get(index)
        values = idx.get(key) if idx is not None else None
        return list(values) if values else []

    def agent(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._one("agents_idx", (namespace, name))

    def connector(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._one("connectors_idx", (namespace, name))

    def state_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._one("statepolicies_idx", (namespace, name))

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """{'hash', 'keys', 'managed'}; never the data."""
        return self._one("secrets_idx", (namespace, name))

    def config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._one("configmaps_idx", (namespace, name))

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Any Service's spec, trimmed to what egress needs (selector, ports, clusterIP, type, externalName)."""
        return self._one("services_idx", (namespace, name))

    def children(self, namespace: str, owner_kind: str, owner: str) -> list[dict[str, Any]]:
        """Every object the operator manages for an owner (all kinds)."""
        key = (namespace, owner_kind, owner)
        return [
            obj for name, idx in self.indexes.items() if name.startswith("children_") for obj in (idx.get(key) or ())
        ]

    def child(self, namespace: str, owner_kind: str, owner: str, kind: str, name: str) -> dict[str, Any] | None:
        """One managed object of an owner, by kind and name."""
        for obj in self.children(namespace, owner_kind, owner):
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        return None

    def agents_in(self, namespace: str) -> list[Key]:
        idx = self.indexes.get("agents_idx") or {}
        return [key for key in idx if key[0] == namespace]

    def all_agents(self) -> list[Key]:
        return list(self.indexes.get("agents_idx") or {})

    def all_of(self, index: str) -> list[Any]:
        idx = self.indexes.get(index) or {}
        return [value for key in idx for value in idx[key]]

    # Our own status writes ----------------------------------------------------------------------
    def remember_status(self, key: Key, resource_version: str, status: dict[str, Any]) -> None:
        """The watch may deliver our own status write after the next reconcile has started; the
        canary's memory is its status, so a reconcile must never decide from an older copy."""
        self._written[key] = (resource_version, status)

    def status_for(self, key: Key, body: dict[str, Any]) -> dict[str, Any]:
        seen = body.get("status") or {}
        written = self._written.get(key)
        if written is None:
            return seen
        rv, status = written
        current = body.get("metadata", {}).get("resourceVersion", "")
        if current == rv:
            self._written.pop(key, None)  # the index has caught up
            return seen
        try:
            stale = int(current) < int(rv)  # etcd revisions; opaque by contract, integers in practice
        except ValueError:
            stale = False
        if stale:
            return status
        self._written.pop(key, None)  # someone wrote after us: theirs is the newer truth
        return seen

    # Reverse dependencies -------------------------------------------------------------------
    def record_dependencies(self, agent: Key, dependencies: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Returns the dependencies that were added or dropped (their usedBy changed)."""
        previous = self._dependencies.get(agent, set())
        for dep in previous - dependencies:
            self._dependents[dep].discard(agent)
        for dep in dependencies:
            self._dependents[dep].add(agent)
        self._dependencies[agent] = dependencies
        return previous ^ dependencies

    def forget(self, agent: Key) -> set[tuple[str, str, str]]:
        self._written.pop(agent, None)
        changed = self.record_dependencies(agent, set())
        self._dependencies.pop(agent, None)
        return changed

    def dependents(self, kind: str, namespace: str, name: str) -> set[Key]:
        return set(self._dependents.get((kind, namespace, name), ()))

    def used_by(self, kind: str, namespace: str, name: str) -> int:
        """Agents whose spec names this Connector or StatePolicy, read from the specs themselves so
        the count is right from the first reconcile after a start, whatever the order."""
        count = 0
        for key in self.agents_in(namespace):
            spec = (self.agent(*key) or {}).get("spec", {})
            if kind == "Connector":
                count += any(ref.get("name") == name for ref in spec.get("connectors", []))
            elif kind == "StatePolicy":
                count += (spec.get("statePolicyRef") or {}).get("name") == name
        return count
