"""A reconcile Store filled the way kopf's indexes fill it (Secrets: hash and key names only), for unit
tests of the resolve step and the builders fed by it, without a cluster."""

from __future__ import annotations

from typing import Any

from agentfleet_operator.api import AgentSpec
from agentfleet_operator.reconcile.resolve import resolve
from agentfleet_operator.reconcile.store import Store


class StoreView:
    def __init__(self, namespace: str = "support") -> None:
        self.namespace = namespace
        self.store = Store()
        self.store.indexes = {"agents_idx": {}, "connectors_idx": {}, "secrets_idx": {}, "configmaps_idx": {}}

    def agent(self, name: str, spec: dict[str, Any]) -> StoreView:
        self.store.indexes["agents_idx"][(self.namespace, name)] = [{"metadata": {"name": name}, "spec": spec}]  # type: ignore[index]
        return self

    def connector(self, name: str, spec: dict[str, Any]) -> StoreView:
        self.store.indexes["connectors_idx"][(self.namespace, name)] = [{"metadata": {"name": name}, "spec": spec}]  # type: ignore[index]
        return self

    def secret(self, name: str, keys: list[str], digest: str = "h") -> StoreView:
        self.store.indexes["secrets_idx"][(self.namespace, name)] = [{"hash": digest, "keys": keys}]  # type: ignore[index]
        return self

    def drop_secret(self, name: str) -> StoreView:
        self.store.indexes["secrets_idx"].pop((self.namespace, name), None)  # type: ignore[attr-defined]
        return self

    def resolve(self, name: str) -> Any:
        body = self.store.agent(self.namespace, name)
        assert body is not None
        return resolve(self.store, self.namespace, name, AgentSpec.model_validate(body["spec"]))
