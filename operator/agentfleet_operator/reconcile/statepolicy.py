"""Reconcile a StatePolicy: run the Redis it provisions and report whether its store is usable."""

from __future__ import annotations

import base64
import binascii
import secrets as random_secrets
from typing import Any

from pydantic import ValidationError

from ..api import reasons
from ..api.base import API_VERSION
from ..api.statepolicy import StatePolicySpec
from ..builders import names, state_store
from ..builders.conditions import Cond
from ..builders.drift import needs_apply
from ..builders.secret_check import secret_problem
from ..kube.client import ApiError
from . import metrics
from .context import Context
from .status_writer import ready_change_events, write_status
from .store_probe import probe_redis


def _secret_problem(ctx: Context, namespace: str, secret: str, key: str, what: str) -> Cond | None:
    problem = secret_problem(ctx.store.secret(namespace, secret), namespace, secret, [key], what)
    return None if problem is None else Cond("Ready", False, *problem)


async def _external_store(ctx: Context, namespace: str, url: str, ref: Any) -> Cond:
    """StoreReachable of an external Redis, checked with the password the agents will use."""
    password = None
    if ref is not None:
        try:
            secret = await ctx.client.get("v1", "Secret", namespace, ref.name)
        except ApiError as exc:
            return Cond("StoreReachable", None, reasons.NOT_CHECKED, f"could not read Secret {ref.name}: {exc.message}")
        encoded = ((secret or {}).get("data") or {}).get(ref.key)
        if encoded is None:  # gone since the index said it was there; its event brings us back
            return Cond("StoreReachable", None, reasons.NOT_CHECKED, f"Secret {ref.name} has no key {ref.key}")
        try:
            password = base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError):
            return Cond(
                "StoreReachable", False, reasons.AUTH_FAILED, f"Secret {ref.name} key {ref.key} is not UTF-8 text"
            )
    result = await probe_redis(url, password, ctx.config.store_probe_timeout)
    return Cond("StoreReachable", result.reachable, result.reason, result.message)


async def _ensure_session_key(ctx: Context, namespace: str, name: str, uid: str) -> None:
    """Made once; never rewritten (a new key would orphan every stored session)."""
    if ctx.store.secret(namespace, names.session_key_secret(name)) is None:
        key = random_secrets.token_urlsafe(32)
        await ctx.client.create(state_store.session_key_secret(name, namespace, uid, key))


async def reconcile_state_policy(ctx: Context, namespace: str, name: str) -> float | None:
    started = ctx.now()
    body = ctx.store.state_policy(namespace, name)
    if body is None:
        return None
    meta = body["metadata"]
    uid = meta["uid"]
    try:
        spec = StatePolicySpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        spec = None
        ready = Cond("Ready", False, reasons.INVALID_SPEC, str(exc.errors()[0]["msg"]))
        reachable = Cond("StoreReachable", None, reasons.INVALID_SPEC, ready.message)
    store_url = ""
    requeue: float | None = None
    if spec is not None:
        problem = None
        if spec.encryption:
            ref = spec.encryption.key_secret_ref
            problem = _secret_problem(ctx, namespace, ref.name, ref.key, "encryption key")
        if spec.store.type == "redis":
            try:
                await _ensure_session_key(ctx, namespace, name, uid)
            except ApiError as exc:
                if exc.namespace_terminating:
                    return None
                raise
        if state_store.provisioned(spec):
            store_url = state_store.redis_url(name, namespace)
            auth = names.redis_auth_secret(name)
            try:
                if ctx.store.secret(namespace, auth) is None:
                    await ctx.client.create(
                        state_store.password_secret(name, namespace, uid, random_secrets.token_urlsafe(24))
                    )
                for obj in (
                    state_store.service(name, namespace, uid),
                    state_store.stateful_set(name, namespace, uid, spec, ctx.config.redis_image),
                ):
                    live = ctx.store.child(namespace, "StatePolicy", name, obj["kind"], obj["metadata"]["name"])
                    if needs_apply(obj, live):
                        await ctx.client.apply(obj)
            except ApiError as exc:
                if exc.namespace_terminating:
                    return None
                raise
            sts = ctx.store.child(namespace, "StatePolicy", name, "StatefulSet", names.redis(name)) or {}
            ready_pods = sts.get("status", {}).get("readyReplicas", 0)
            reachable = (
                Cond("StoreReachable", True, reasons.REDIS_READY, f"Redis {names.redis(name)} has a ready pod")
                if ready_pods
                else Cond(
                    "StoreReachable",
                    False,
                    reasons.REDIS_NOT_READY,
                    f"Redis StatefulSet {names.redis(name)} has no ready pod yet",
                )
            )
        elif spec.store.type == "redis" and spec.store.redis:
            store_url = spec.store.redis.url or ""
            ref = spec.store.redis.password_secret_ref
            if ref and problem is None:
                problem = _secret_problem(ctx, namespace, ref.name, ref.key, "Redis password")
            if problem is None:
                reachable = await _external_store(ctx, namespace, store_url, ref)
            else:
                reachable = Cond("StoreReachable", None, reasons.NOT_CHECKED, "not checked until the Secrets resolve")
            # A store that goes away (or comes back) changes no object we watch: look again.
            requeue = ctx.config.store_probe_seconds
        else:
            reachable = Cond("StoreReachable", True, reasons.IN_MEMORY, "per-pod memory store (development only)")
        if problem is not None:
            ready = problem
        elif reachable.status is False:
            ready = Cond("Ready", False, reachable.reason, reachable.message)
        else:
            ready = Cond("Ready", True, reasons.READY, f"{spec.store.type} store configured")
    old = body.get("status") or {}
    await write_status(
        ctx,
        {"apiVersion": API_VERSION, "kind": "StatePolicy", "metadata": meta},
        old,
        meta.get("generation"),
        {"usedBy": ctx.store.used_by("StatePolicy", namespace, name), "storeUrl": store_url},
        [ready, reachable],
        ready_change_events(old, ready),
    )
    metrics.observe_reconcile("StatePolicy", started, ctx.now(), None if ready.status else ready.reason)
    return requeue
