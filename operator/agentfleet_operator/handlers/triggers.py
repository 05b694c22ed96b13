"""Watch events → work-queue keys. Nothing here reconciles; it only decides who must look again.

Every handler is `async def` on purpose: kopf runs plain functions in worker threads, and the work
queue (an asyncio.Queue) must only be touched from the event loop's thread.

kopf's change handlers (on.create/update) would write their bookkeeping annotations onto the user's
objects (a diff for Argo CD) and need finalizers; plain event handlers need neither."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from ..api.identity import GROUP, PLURAL_AGENTS, PLURAL_CONNECTORS, PLURAL_STATE_POLICIES, VERSION
from ..builders import egress
from ..reconcile.store import Store, usage_changed
from .indexes import CHILD_KINDS, INTENT_PREFIX, MANAGED, made_by_us
from .memo import OperatorMemo

Trigger = Callable[..., Awaitable[None]]


def _after_listing(handler: Trigger) -> Trigger:
    """kopf calls no event handler before every index is fully listed, so the first call of any of
    them is when the operator's view is complete (what /readyz waits for)."""

    @functools.wraps(handler)  # keeps the name, from which kopf derives the handler's id
    async def marked(*, memo: OperatorMemo, **kwargs: Any) -> None:
        memo.store.mark_listed()
        await handler(memo=memo, **kwargs)

    return marked


# What an Agent event must differ in to deserve a reconcile: status-only events are our own writes.
def _fingerprint(body: kopf.Body) -> tuple[Any, ...]:
    meta = body.get("metadata", {})
    intents = tuple(sorted((k, v) for k, v in (meta.get("annotations") or {}).items() if k.startswith(INTENT_PREFIX)))
    return (meta.get("generation"), meta.get("uid"), meta.get("deletionTimestamp"), intents)


@kopf.on.event(GROUP, VERSION, PLURAL_AGENTS)
@_after_listing
async def agent_event(
    event: dict[str, Any], namespace: str, name: str, body: kopf.Body, memo: OperatorMemo, **_: Any
) -> None:
    key = (namespace, name)
    seen = memo.agent_fingerprints
    if event.get("type") == "DELETED":
        seen.pop(key, None)
        for dependency in usage_changed(memo.store.forget(key)):
            memo.queue.add(dependency)
        _asked_by(memo, namespace, name)
        return
    fingerprint = _fingerprint(body)
    if seen.get(key) == fingerprint:
        return
    seen[key] = fingerprint
    memo.queue.add(("Agent", namespace, name))
    _asked_by(memo, namespace, name)


def _asked_by(memo: OperatorMemo, namespace: str, agent: str) -> None:
    """An Agent that appeared, changed or went: the Agents that ask it through an agent Connector (or
    walk through it looking for loops) and the agent Connectors naming it report on it."""
    _dependents(memo, "Agent", namespace, agent)
    idx = memo.store.indexes.get("connectors_idx") or {}
    for key in [k for k in idx if k[0] == namespace]:  # a namespace holds few Connectors
        for connector in idx[key]:
            spec = connector.get("spec") or {}
            if spec.get("type") == "agent" and (spec.get("agentRef") or {}).get("name") == agent:
                memo.queue.add(("Connector", namespace, key[1]))


def _dependents(memo: OperatorMemo, kind: str, namespace: str, name: str) -> None:
    for ns, agent in memo.store.dependents(kind, namespace, name):
        memo.queue.add(("Agent", ns, agent))


@kopf.on.event(GROUP, VERSION, PLURAL_CONNECTORS)
@_after_listing
async def connector_event(namespace: str, name: str, memo: OperatorMemo, **_: Any) -> None:
    memo.queue.add(("Connector", namespace, name))
    _dependents(memo, "Connector", namespace, name)


@kopf.on.event(GROUP, VERSION, PLURAL_STATE_POLICIES)
@_after_listing
async def state_policy_event(namespace: str, name: str, memo: OperatorMemo, **_: Any) -> None:
    memo.queue.add(("StatePolicy", namespace, name))
    _dependents(memo, "StatePolicy", namespace, name)


def _secrets_named(kind: str, name: str, spec: dict[str, Any]) -> set[str]:
    """The Secrets a Connector's or StatePolicy's status depends on."""
    if kind == "Connector":
        return {
            ((spec.get("auth") or {}).get("secretRef") or {}).get("name", ""),
            (spec.get("caBundleSecretRef") or {}).get("name", ""),
        }
    redis = (spec.get("store") or {}).get("redis") or {}
    named = {
        (redis.get("passwordSecretRef") or {}).get("name", ""),
        ((spec.get("encryption") or {}).get("keySecretRef") or {}).get("name", ""),
    }
    if redis.get("provision"):
        named.add(f"{name}-redis-auth")
    return named


def _secret_users(store: Store, namespace: str, secret: str) -> list[tuple[str, str, str]]:
    """Connectors and StatePolicies report on the Secrets they name; a namespace holds few of them."""
    users = []
    for kind, index in (("Connector", "connectors_idx"), ("StatePolicy", "statepolicies_idx")):
        idx = store.indexes.get(index) or {}
        for key in [k for k in idx if k[0] == namespace]:
            for body in idx[key]:
                if secret in _secrets_named(kind, key[1], body.get("spec") or {}):
                    users.append((kind, key[0], key[1]))
    return users


@kopf.on.event("", "v1", "secrets")
@_after_listing
async def secret_event(namespace: str, name: str, memo: OperatorMemo, **_: Any) -> None:
    _dependents(memo, "Secret", namespace, name)
    for user in _secret_users(memo.store, namespace, name):
        memo.queue.add(user)


def _connectors_naming(store: Store, namespace: str, service: str, cluster_domain: str) -> list[tuple[str, str, str]]:
    """Connectors whose endpoint or token URL names this Service: their EgressReady says whether it
    exists. Any namespace's Connector may name it (<svc>.<ns>.svc), so all are looked at; each is a
    few strings to parse."""
    users = []
    for (connector_ns, connector), bodies in (store.indexes.get("connectors_idx") or {}).items():
        for body in bodies:
            spec = body.get("spec") or {}
            urls = [spec.get("endpoint"), (spec.get("auth") or {}).get("tokenURL")]
            needs = [egress.Need("", url) for url in urls if isinstance(url, str)]
            if (namespace, service) in egress.services_read(needs, connector_ns, cluster_domain):
                users.append(("Connector", connector_ns, connector))
    return users


@kopf.on.event("", "v1", "services")
@_after_listing
async def service_event(namespace: str, name: str, memo: OperatorMemo, **_: Any) -> None:
    # Any Service, not only ours: an Agent's egress follows the Services its URLs name (created
    # after the Agent, or given another selector or port).
    _dependents(memo, "Service", namespace, name)
    for user in _connectors_naming(memo.store, namespace, name, memo.config.cluster_domain):
        memo.queue.add(user)


def _users_config_map(body: kopf.Body, **_: Any) -> bool:
    return not made_by_us(body)


@kopf.on.event("", "v1", "configmaps", when=_users_config_map)
@_after_listing
async def config_map_event(namespace: str, name: str, memo: OperatorMemo, **_: Any) -> None:
    _dependents(memo, "ConfigMap", namespace, name)


@_after_listing
async def _owner_event(namespace: str, body: kopf.Body, memo: OperatorMemo, **_: Any) -> None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            memo.queue.add((ref["kind"], namespace, ref["name"]))


for _group, _version, _plural, _kind in CHILD_KINDS:
    kopf.on.event(_group, _version, _plural, labels=MANAGED, id=f"drift_{_plural}")(_owner_event)
