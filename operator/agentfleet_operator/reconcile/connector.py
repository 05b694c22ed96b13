"""Reconcile a Connector's status: is its Secret there with the keys its auth type needs?"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..api import reasons
from ..api.base import API_VERSION
from ..api.connector import SECRET_KEYS_BY_AUTH, ConnectorSpec
from ..builders.conditions import Cond, merge_conditions, status_patch
from . import metrics
from .context import Context, rfc3339


async def reconcile_connector(ctx: Context, namespace: str, name: str) -> float | None:
    started = ctx.now()
    body = ctx.store.connector(namespace, name)
    if body is None:
        return None
    meta = body["metadata"]
    try:
        spec = ConnectorSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        secret_cond = Cond("SecretResolved", None, reasons.INVALID_SPEC, str(exc.errors()[0]["msg"]))
        ready = Cond("Ready", False, reasons.INVALID_SPEC, secret_cond.message)
        secret_hash = ""
    else:
        secret_hash = ""
        if spec.auth.secret_ref is None:
            secret_cond = Cond("SecretResolved", True, reasons.NO_CREDENTIALS, "auth type none needs no Secret")
        else:
            secret_name = spec.auth.secret_ref.name
            found = ctx.store.secret(namespace, secret_name)
            missing = [k for k in SECRET_KEYS_BY_AUTH[spec.auth.type] if found and k not in found["keys"]]
            if found is None:
                secret_cond = Cond("SecretResolved", False, reasons.SECRET_NOT_FOUND,
                                   f"Secret {secret_name} not found in namespace {namespace}")
            elif missing:
                secret_cond = Cond("SecretResolved", False, reasons.SECRET_KEY_MISSING,
                                   f"Secret {secret_name} has no key {', '.join(missing)} "
                                   f"(auth type {spec.auth.type} needs "
                                   f"{', '.join(SECRET_KEYS_BY_AUTH[spec.auth.type])})")
            else:
                secret_cond = Cond("SecretResolved", True, reasons.SECRET_RESOLVED,
                                   f"Secret {secret_name} has every key")
                secret_hash = found["hash"]
        ready = (Cond("Ready", True, reasons.READY, f"{len(spec.tools)} tool(s) available") if secret_cond.status
                 else Cond("Ready", False, secret_cond.reason, secret_cond.message))
    old = body.get("status") or {}
    now = rfc3339(ctx.now())
    new: dict[str, Any] = {
        "observedGeneration": meta.get("generation"),
        "conditions": merge_conditions(old.get("conditions", []), [ready, secret_cond], meta.get("generation"), now),
        "secretHash": secret_hash,
        "usedBy": ctx.store.used_by("Connector", namespace, name),
    }
    patch = status_patch(old, new)
    if patch:
        await ctx.client.patch_status(API_VERSION, "Connector", namespace, name, patch)
        old_ready = next((c for c in old.get("conditions", []) if c.get("type") == "Ready"), {})
        if (old_ready.get("status"), old_ready.get("reason")) != (new["conditions"][0]["status"], ready.reason):
            involved = {"apiVersion": API_VERSION, "kind": "Connector", "metadata": meta}
            await ctx.event(involved, "Normal" if ready.status else "Warning", ready.reason, ready.message)
    metrics.observe_reconcile("Connector", started, ctx.now(), None if ready.status else ready.reason)
    return None
