"""Reconcile a Connector's status: is its Secret there with the keys its auth type needs? For an
agent Connector: is the Agent it asks there (the Agents using it check the target's key)?"""

from __future__ import annotations

from pydantic import ValidationError

from ..api import reasons
from ..api.base import API_VERSION
from ..api.connector import SECRET_KEYS_BY_AUTH, ConnectorSpec
from ..builders import agent_tools
from ..builders.conditions import Cond
from ..builders.secret_check import secret_problem
from . import metrics
from .context import Context
from .status_writer import ready_change_events, write_status


def _secret_condition(ctx: Context, namespace: str, spec: ConnectorSpec) -> tuple[Cond, str]:
    """SecretResolved, and the hash of the Secret's data when it has every key its auth type needs."""
    if spec.auth.secret_ref is None:
        return Cond("SecretResolved", True, reasons.NO_CREDENTIALS, "auth type none needs no Secret"), ""
    secret_name = spec.auth.secret_ref.name
    keys = SECRET_KEYS_BY_AUTH[spec.auth.type]
    found = ctx.store.secret(namespace, secret_name)
    problem = secret_problem(
        found, namespace, secret_name, keys, needs=f"auth type {spec.auth.type} needs {', '.join(keys)}"
    )
    if problem is not None:
        return Cond("SecretResolved", False, *problem), ""
    assert found is not None  # secret_problem reports an absent Secret
    return Cond("SecretResolved", True, reasons.SECRET_RESOLVED, f"Secret {secret_name} has every key"), found["hash"]


def _agent_conditions(ctx: Context, namespace: str, spec: ConnectorSpec) -> tuple[Cond, Cond]:
    """SecretResolved and Ready of an agent Connector: it names no Secret of its own; the Agents
    using it mount the target's access Secret and report a missing one themselves."""
    assert spec.agent_ref is not None  # type agent: required by the API
    target = spec.agent_ref.name
    secret_cond = Cond(
        "SecretResolved", True, reasons.NO_CREDENTIALS, f"type agent: the Agents using it present Agent {target}'s key"
    )
    if ctx.store.agent(namespace, target) is None:
        return secret_cond, Cond(
            "Ready", False, reasons.AGENT_NOT_FOUND, f"Agent {target} not found in namespace {namespace}"
        )
    tool = agent_tools.tool_name(spec)
    return secret_cond, Cond("Ready", True, reasons.READY, f"tool {tool} asks Agent {target}")


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
        if spec.type == "agent":
            secret_cond, ready = _agent_conditions(ctx, namespace, spec)
            secret_hash = ""
        else:
            secret_cond, secret_hash = _secret_condition(ctx, namespace, spec)
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
