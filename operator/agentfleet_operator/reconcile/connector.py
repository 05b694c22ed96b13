"""Reconcile a Connector's status: is its Secret there with the keys its auth type needs?"""

from __future__ import annotations

from pydantic import ValidationError

from ..api import reasons
from ..api.base import API_VERSION
from ..api.connector import SECRET_KEYS_BY_AUTH, ConnectorSpec
from ..builders.conditions import Cond
from ..builders.secret_check import secret_problem
from . import metrics
from .context import Context
from .status_writer import ready_change_events, write_status


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
            keys = SECRET_KEYS_BY_AUTH[spec.auth.type]
            found = ctx.store.secret(namespace, secret_name)
            problem = secret_problem(
                found, namespace, secret_name, keys, needs=f"auth type {spec.auth.type} needs {', '.join(keys)}"
            )
            if problem is not None:
                secret_cond = Cond("SecretResolved", False, *problem)
            else:
                assert found is not None  # secret_problem reports an absent Secret
                secret_cond = Cond(
                    "SecretResolved", True, reasons.SECRET_RESOLVED, f"Secret {secret_name} has every key"
                )
                secret_hash = found["hash"]
        ready = (
            Cond("Ready", True, reasons.READY, f"{len(spec.tools)} tool(s) available")
            if secret_cond.status
            else Cond("Ready", False, secret_cond.reason, secret_cond.message)
        )
    old = body.get("status") or {}
    await write_status(
        ctx,
        {"apiVersion": API_VERSION, "kind": "Connector", "metadata": meta},
        old,
        meta.get("generation"),
        {"secretHash": secret_hash, "usedBy": ctx.store.used_by("Connector", namespace, name)},
        [ready, secret_cond],
        ready_change_events(old, ready),
    )
    metrics.observe_reconcile("Connector", started, ctx.now(), None if ready.status else ready.reason)
    return None
