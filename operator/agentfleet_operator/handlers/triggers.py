"""Watch events → work-queue keys. Nothing here reconciles; it only decides who must look again.

Every handler is `async def` on purpose: kopf runs plain functions in worker threads, and the work
queue (an asyncio.Queue) must only be touched from the event loop's thread.

kopf's change handlers (on.create/update) would write their bookkeeping annotations onto the user's
objects (a diff for Argo CD) and need finalizers; plain event handlers need neither."""

from __future__ import annotations

from typing import Any

import kopf

from ..reconcile.store import STORE
from .indexes import CHILD_KINDS, GROUP, INTENT_PREFIX, MANAGED, VERSION, made_by_us
from .queue_ref import enqueue

# What an Agent event must differ in to deserve a reconcile: status-only events are our own writes.
_seen_agents: dict[tuple[str, str], tuple[Any, ...]] = {}


def _fingerprint(body: kopf.Body) -> tuple[Any, ...]:
    meta = body.get("metadata", {})
    intents = tuple(sorted((k, v) for k, v in (meta.get("annotations") or {}).items() if k.startswith(INTENT_PREFIX)))
    return (meta.get("generation"), meta.get("uid"), meta.get("deletionTimestamp"), intents)


@kopf.on.event(GROUP, VERSION, "agents")
async def agent_event(event: dict[str, Any], namespace: str, name: str, body: kopf.Body, **kwargs: Any) -> None:
    STORE.bind(kwargs)
    key = (namespace, name)
    if event.get("type") == "DELETED":
        _seen_agents.pop(key, None)
        for kind, ns, dep in STORE.forget(key):
            if kind in ("Connector", "StatePolicy"):
                enqueue((kind, ns, dep))
        return
    fingerprint = _fingerprint(body)
    if _seen_agents.get(key) == fingerprint:
        return
    _seen_agents[key] = fingerprint
    enqueue(("Agent", namespace, name))


def _dependents(kind: str, namespace: str, name: str) -> None:
    for ns, agent in STORE.dependents(kind, namespace, name):
        enqueue(("Agent", ns, agent))


@kopf.on.event(GROUP, VERSION, "connectors")
async def connector_event(namespace: str, name: str, **kwargs: Any) -> None:
    STORE.bind(kwargs)
    enqueue(("Connector", namespace, name))
    _dependents("Connector", namespace, name)


@kopf.on.event(GROUP, VERSION, "statepolicies")
async def state_policy_event(namespace: str, name: str, **kwargs: Any) -> None:
    STORE.bind(kwargs)
    enqueue(("StatePolicy", namespace, name))
    _dependents("StatePolicy", namespace, name)


def _secrets_named(kind: str, name: str, spec: dict[str, Any]) -> set[str]:
    """The Secrets a Connector's or StatePolicy's status depends on."""
    if kind == "Connector":
        return {((spec.get("auth") or {}).get("secretRef") or {}).get("name", "")}
    redis = (spec.get("store") or {}).get("redis") or {}
    named = {(redis.get("passwordSecretRef") or {}).get("name", ""),
             ((spec.get("encryption") or {}).get("keySecretRef") or {}).get("name", "")}
    if redis.get("provision"):
        named.add(f"{name}-redis-auth")
    return named


def _secret_users(namespace: str, secret: str) -> None:
    """Connectors and StatePolicies report on the Secrets they name; a namespace holds few of them."""
    for kind, index in (("Connector", "connectors_idx"), ("StatePolicy", "statepolicies_idx")):
        idx = STORE.indexes.get(index) or {}
        for key in [k for k in idx if k[0] == namespace]:
            for body in idx[key]:
                if secret in _secrets_named(kind, key[1], body.get("spec") or {}):
                    enqueue((kind, key[0], key[1]))


@kopf.on.event("", "v1", "secrets")
async def secret_event(namespace: str, name: str, **kwargs: Any) -> None:
    STORE.bind(kwargs)
    _dependents("Secret", namespace, name)
    _secret_users(namespace, name)


def _users_config_map(body: kopf.Body, **_: Any) -> bool:
    return not made_by_us(body)


@kopf.on.event("", "v1", "configmaps", when=_users_config_map)
async def config_map_event(namespace: str, name: str, **kwargs: Any) -> None:
    STORE.bind(kwargs)
    _dependents("ConfigMap", namespace, name)


async def _owner_event(namespace: str, body: kopf.Body, **kwargs: Any) -> None:
    STORE.bind(kwargs)
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            enqueue((ref["kind"], namespace, ref["name"]))


for _group, _version, _plural, _kind in CHILD_KINDS:
    kopf.on.event(_group, _version, _plural, labels=MANAGED, id=f"drift_{_plural}")(_owner_event)
