"""Reconcile a Connector's status: is its Secret there with the keys its auth type needs? For an MCP
Connector: which tools does its server offer (status.tools, ToolsDiscovered)? For an agent Connector:
is the Agent it asks there (the Agents using it check the target's key)? And for every type: can the
NetworkPolicy of an Agent using it let the pods reach its hosts (EgressReady)?"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..api import reasons
from ..api.base import API_VERSION
from ..api.connector import SECRET_KEYS_BY_AUTH, ConnectorSpec
from ..builders import agent_tools, egress, names
from ..builders.conditions import Cond
from ..builders.mcp_tools import select_tools
from ..builders.revision import secret_hash
from ..builders.secret_check import secret_problem
from . import metrics
from .connector_credentials import CredentialsProblem, discovery_headers, discovery_trust
from .context import Context
from .mcp_discovery import DiscoveryResult, discover_tools
from .status_writer import ready_change_events, write_status


def _ca_bundle(ctx: Context, namespace: str, spec: ConnectorSpec) -> tuple[Cond | None, str]:
    """A problem with spec.caBundleSecretRef (None when absent or fine), and its Secret's hash."""
    bundle = spec.ca_bundle_secret_ref
    if bundle is None:
        return None, ""
    found = ctx.store.secret(namespace, bundle.name)
    problem = secret_problem(found, namespace, bundle.name, [bundle.key], "CA bundle")
    if problem is not None:
        return Cond("SecretResolved", False, *problem), ""
    assert found is not None  # secret_problem reports an absent Secret
    return None, found["hash"]


def _secret_condition(ctx: Context, namespace: str, spec: ConnectorSpec) -> tuple[Cond, str]:
    """SecretResolved, and the hash of the Secrets' data when they have every key needed: the auth
    type's keys, and the CA bundle's key when one is named (a changed bundle is discovered again)."""
    bundle_problem, bundle_hash = _ca_bundle(ctx, namespace, spec)
    if bundle_problem is not None:
        return bundle_problem, ""
    if spec.auth.secret_ref is None:
        return Cond("SecretResolved", True, reasons.NO_CREDENTIALS, "auth type none needs no Secret"), bundle_hash
    secret_name = spec.auth.secret_ref.name
    keys = SECRET_KEYS_BY_AUTH[spec.auth.type]
    found = ctx.store.secret(namespace, secret_name)
    problem = secret_problem(
        found, namespace, secret_name, keys, needs=f"auth type {spec.auth.type} needs {', '.join(keys)}"
    )
    if problem is not None:
        return Cond("SecretResolved", False, *problem), ""
    assert found is not None  # secret_problem reports an absent Secret
    combined = secret_hash({"auth": found["hash"], "caBundle": bundle_hash}) if bundle_hash else found["hash"]
    return Cond("SecretResolved", True, reasons.SECRET_RESOLVED, f"Secret {secret_name} has every key"), combined


async def _discover(ctx: Context, namespace: str, spec: ConnectorSpec) -> DiscoveryResult:
    timeout = float(spec.timeout_seconds)
    try:
        verify = await discovery_trust(ctx.client, namespace, spec.ca_bundle_secret_ref)
        headers = await discovery_headers(ctx.client, namespace, spec.auth, timeout, verify)
    except CredentialsProblem as problem:
        return DiscoveryResult(False, problem.reason, problem.message)
    assert spec.endpoint is not None  # required by the API unless type is agent
    return await discover_tools(spec.endpoint, headers, timeout, verify)


def _discovery(
    ctx: Context, namespace: str, name: str, generation: int | None, spec: ConnectorSpec, secret_hash: str, old: Any
) -> tuple[Cond, dict[str, Any], float | None]:
    """ToolsDiscovered, the status fields it decides, and when to look again."""
    key = ("Connector", namespace, name)
    fingerprint = (generation, secret_hash)
    discovery = ctx.discovery
    if discovery.due_in(key, fingerprint) == 0 and not discovery.running(key, fingerprint):
        discovery.start(key, fingerprint, lambda: _discover(ctx, namespace, spec), lambda: ctx.enqueue(key))
    attempt = discovery.latest(key, fingerprint)
    kept = old.get("tools")  # the last discovery that succeeded stays until another succeeds
    fields: dict[str, Any] = {}
    if kept is not None:
        fields = {"tools": kept, "toolCount": len(kept)}
    if attempt is None:
        # After an operator restart the stored answer stands until the new one comes: a restart
        # alone writes nothing (and makes no Agent look again).
        stored = next((c for c in old.get("conditions") or [] if c.get("type") == "ToolsDiscovered"), None)
        if stored and stored.get("observedGeneration") == generation and old.get("secretHash") == secret_hash:
            status = {"True": True, "False": False}.get(stored.get("status", ""))
            return Cond("ToolsDiscovered", status, stored.get("reason", ""), stored.get("message", "")), fields, None
        return Cond("ToolsDiscovered", None, reasons.DISCOVERING, "asking the MCP server for its tools"), fields, None
    requeue = max(1.0, discovery.due_in(key, fingerprint))
    result = attempt.result
    if not result.ok:
        message = result.message
        if kept is not None:
            message += f"; the {len(kept)} tool(s) of the last discovery stay in use"
        return Cond("ToolsDiscovered", False, result.reason, message), fields, requeue
    selection = select_tools(result.tools, [tool.name for tool in spec.tools])
    tools = [tool.model_dump(by_alias=True, mode="json") for tool in selection.tools]
    fields = {"tools": tools, "toolCount": len(tools)}
    offered = ", ".join(tool.name for tool in result.tools) or "none"
    if selection.missing:
        return (
            Cond(
                "ToolsDiscovered",
                False,
                reasons.TOOL_NOT_FOUND,
                f"the MCP server offers no tool {', '.join(selection.missing)} (it offers: {offered})",
            ),
            fields,
            requeue,
        )
    message = result.message
    if selection.clashing:
        message += f"; left out (their names clash with another tool's): {', '.join(selection.clashing)}"
    elif spec.tools:
        message += f"; {len(tools)} kept by spec.tools"
    return Cond("ToolsDiscovered", True, reasons.DISCOVERED, message), fields, requeue


def _agent_conditions(ctx: Context, namespace: str, spec: ConnectorSpec) -> tuple[Cond, Cond]:
    """SecretResolved and Ready of an agent Connector: it names no Secret of its own; the Agents
    using it mount the target's access Secret and report a missing one themselves."""
    assert spec.agent_ref is not None  # type agent: required by the API
    target = spec.agent_ref.name
    bundle_problem, _ = _ca_bundle(ctx, namespace, spec)
    if bundle_problem is not None:
        return bundle_problem, Cond("Ready", False, bundle_problem.reason, bundle_problem.message)
    secret_cond = Cond(
        "SecretResolved", True, reasons.NO_CREDENTIALS, f"type agent: the Agents using it present Agent {target}'s key"
    )
    if ctx.store.agent(namespace, target) is None:
        return secret_cond, Cond(
            "Ready", False, reasons.AGENT_NOT_FOUND, f"Agent {target} not found in namespace {namespace}"
        )
    tool = agent_tools.tool_name(spec)
    return secret_cond, Cond("Ready", True, reasons.READY, f"tool {tool} asks Agent {target}")


def _egress_condition(ctx: Context, namespace: str, name: str, spec: ConnectorSpec) -> Cond:
    """EgressReady: whether the Agents' NetworkPolicies can allow this Connector's hosts (a host outside
    the cluster needs spec.egress; a Service must exist). Never part of Ready: where NetworkPolicies are
    not enforced the calls go through regardless."""
    if spec.type == "agent":
        assert spec.agent_ref is not None  # type agent: required by the API
        return Cond(
            "EgressReady",
            True,
            reasons.EGRESS_ALLOWED,
            f"the Agents using it may reach Agent {spec.agent_ref.name}'s pods on port {names.RUNTIME_PORT}",
        )
    domain = ctx.config.cluster_domain
    needs = egress.connector_needs(name, spec)
    services = {}
    for key in egress.services_read(needs, namespace, domain):
        found = ctx.store.service(*key)
        if found is not None:
            services[key] = egress.ServiceView.from_spec(found)
    gaps = egress.connector_gaps(name, spec, namespace, services, domain)
    if gaps:
        return Cond("EgressReady", False, gaps[0].reason, egress.summary(gaps))
    hosts = ", ".join(sorted({ep.host for need in needs if (ep := egress.endpoint(need.url)) is not None}))
    return Cond("EgressReady", True, reasons.EGRESS_ALLOWED, f"the Agents using it may reach {hosts}")


async def reconcile_connector(ctx: Context, namespace: str, name: str) -> float | None:
    started = ctx.now()
    body = ctx.store.connector(namespace, name)
    if body is None:
        ctx.discovery.forget(("Connector", namespace, name))
        return None
    meta = body["metadata"]
    old = body.get("status") or {}
    fields: dict[str, Any] = {}
    conds: list[Cond] = []
    requeue: float | None = None
    try:
        spec = ConnectorSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        secret_cond = Cond("SecretResolved", None, reasons.INVALID_SPEC, str(exc.errors()[0]["msg"]))
        ready = Cond("Ready", False, reasons.INVALID_SPEC, secret_cond.message)
        secret_hash = ""
    else:
        conds.append(_egress_condition(ctx, namespace, name, spec))
        if spec.type == "agent":
            secret_cond, ready = _agent_conditions(ctx, namespace, spec)
            secret_hash = ""
            fields = {"tools": None, "toolCount": None}
        else:
            secret_cond, secret_hash = _secret_condition(ctx, namespace, spec)
            if not secret_cond.status:
                ready = Cond("Ready", False, secret_cond.reason, secret_cond.message)
                if spec.type == "mcp":
                    conds.append(Cond("ToolsDiscovered", None, reasons.NOT_CHECKED, "waiting for the Secret"))
                    if old.get("tools") is not None:
                        fields = {"tools": old["tools"], "toolCount": len(old["tools"])}
            elif spec.type == "mcp":
                discovered, fields, requeue = _discovery(
                    ctx, namespace, name, meta.get("generation"), spec, secret_hash, old
                )
                conds.append(discovered)
                ready = (
                    Cond("Ready", True, reasons.READY, f"{fields['toolCount']} tool(s) available")
                    if discovered.status
                    else Cond("Ready", discovered.status, discovered.reason, discovered.message)
                )
            else:
                ready = Cond("Ready", True, reasons.READY, f"{len(spec.tools)} tool(s) available")
                fields = {"tools": None, "toolCount": None}  # a Connector that was mcp before
    await write_status(
        ctx,
        {"apiVersion": API_VERSION, "kind": "Connector", "metadata": meta},
        old,
        meta.get("generation"),
        {"secretHash": secret_hash, "usedBy": ctx.store.used_by("Connector", namespace, name)} | fields,
        [ready, secret_cond, *conds],
        ready_change_events(old, ready),
    )
    metrics.observe_reconcile("Connector", started, ctx.now(), None if ready.status else ready.reason)
    return requeue
