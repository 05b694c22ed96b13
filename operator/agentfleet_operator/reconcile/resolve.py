"""Resolve what an Agent references (Connectors, StatePolicy, prompt ConfigMap, Secrets) from the
in-memory view. Problems are returned as conditions with a reason a user can act on, never raised."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..api import reasons
from ..api.agent import AgentSpec
from ..api.connector import SECRET_KEYS_BY_AUTH, ConnectorSpec, DiscoveredTool
from ..api.statepolicy import StatePolicySpec
from ..builders import agent_tools, egress, names, state_store
from ..builders.inputs import AgentTarget, Dependency, Problem, Resolution, ResolvedConnector, ResolvedState
from ..builders.mcp_tools import offered_to_agent
from ..builders.secret_check import secret_problem
from ..config import DEFAULT_CLUSTER_DOMAIN
from .store import Store

__all__ = ["Dependency", "Problem", "Resolution", "resolve"]


def _need_secret(
    store: Store, res: Resolution, namespace: str, secret: str, keys: tuple[str, ...] | list[str], area: str, what: str
) -> None:
    res.dependencies.add(("Secret", namespace, secret))
    found = store.secret(namespace, secret)
    problem = secret_problem(found, namespace, secret, keys, what)
    if problem is not None:
        res.problem(area, *problem)
        return
    assert found is not None  # secret_problem reports an absent Secret
    res.secret_hashes[secret] = found["hash"]


def _discovered_tools(
    res: Resolution, connector: str, wanted: list[str], status: dict[str, Any]
) -> tuple[DiscoveredTool, ...] | None:
    """An MCP Connector's tools this Agent uses, from the Connector's status; None (and a problem) when
    there are none to use yet. The tools (their schemas) are part of the Agent's revision, so a server
    that changes a schema rolls out like any other change."""
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    listed = status.get("tools")
    if listed is None:
        why = (conditions.get("ToolsDiscovered") or {}).get("message") or "its discovery has not run yet"
        res.problem(
            "connectors",
            reasons.TOOLS_NOT_DISCOVERED,
            f"Connector {connector} has not listed its MCP server's tools yet: {why}",
        )
        return None
    tools, unknown = offered_to_agent([DiscoveredTool.model_validate(tool) for tool in listed], wanted)
    if unknown:
        res.problem(
            "connectors",
            reasons.TOOL_NOT_FOUND,
            f"Connector {connector}'s MCP server offers no tool {', '.join(unknown)}",
        )
        return None
    discovery = conditions.get("ToolsDiscovered") or {}
    if discovery.get("status") == "False":
        # The tools of the last discovery stay; the Agent serves, its calls to them may fail meanwhile.
        res.degraded.append(
            Problem(
                "connectors",
                discovery.get("reason") or reasons.UNREACHABLE,
                f"Connector {connector}: {discovery.get('message', '')}",
            )
        )
    return tuple(tools)


def _agent_target(
    store: Store, res: Resolution, namespace: str, connector: str, spec: ConnectorSpec
) -> AgentTarget | None:
    """The Agent an agent Connector calls and the key its pods present, or None with a problem.

    Its access Secret is the one the target's runtime accepts keys from (builders/runtime_config.py):
    the user's `access.apiKeySecretRef`, or the generated `<target>-access` with key apiKey."""
    assert spec.agent_ref is not None  # type agent: required by the API
    target = spec.agent_ref.name
    res.dependencies.add(("Agent", namespace, target))  # created later, or its access changed
    body = store.agent(namespace, target)
    if body is None:
        res.problem(
            "connectors",
            reasons.AGENT_NOT_FOUND,
            f"Connector {connector}: Agent {target} not found in namespace {namespace}",
        )
        return None
    access = (body.get("spec") or {}).get("access") or {}
    secret = (access.get("apiKeySecretRef") or {}).get("name") or names.access_secret(target)
    # A target serving TLS is called over https; the Connector's caBundleSecretRef says whom to trust.
    serves_tls = bool((access.get("tls") or {}).get("secretRef"))
    res.dependencies.add(("Secret", namespace, secret))
    found = store.secret(namespace, secret)
    # Every key of an access Secret is an accepted key; apiKey (the generated one's) when there is one.
    keys = [] if found is None else list(found["keys"])
    key = "apiKey" if "apiKey" in keys or not keys else sorted(keys)[0]
    problem = secret_problem(found, namespace, secret, [key], f"caller keys of Agent {target}")
    if problem is not None:
        res.problem("connectors", *problem)
        return None
    assert found is not None  # secret_problem reports an absent Secret
    res.secret_hashes[secret] = found["hash"]
    return AgentTarget(target, names.endpoint(target, namespace, tls=serves_tls), secret, key)


def _agent_targets(store: Store, res: Resolution, namespace: str, connectors: list[str]) -> list[str]:
    """The Agents reached through those of `connectors` that are agent Connectors (the loop walk's
    edges); every object read is a dependency, so a later change anywhere on a path is seen."""
    targets = []
    for connector in connectors:
        res.dependencies.add(("Connector", namespace, connector))
        body = store.connector(namespace, connector)
        spec = (body or {}).get("spec") or {}
        target = (spec.get("agentRef") or {}).get("name") if spec.get("type") == "agent" else None
        if target:
            res.dependencies.add(("Agent", namespace, target))
            targets.append(target)
    return targets


def _refuse_loops(store: Store, res: Resolution, namespace: str, name: str, spec: AgentSpec) -> None:
    """An Agent whose agent Connectors lead back to itself is refused; every Agent on the loop finds
    the loop through itself, so all of them say so, in whatever order they were created."""

    def targets(agent: str) -> list[str]:
        if agent == name:
            refs = [ref.name for ref in spec.connectors]
        else:
            refs = [
                ref.get("name", "")
                for ref in ((store.agent(namespace, agent) or {}).get("spec") or {}).get("connectors", [])
            ]
        return _agent_targets(store, res, namespace, refs)

    loop = agent_tools.find_loop(name, targets)
    if loop is not None:
        res.problem("connectors", reasons.TOOL_LOOP, f"agent Connectors make a loop: {' → '.join(loop)}")


def _serving_certificate(store: Store, res: Resolution, namespace: str, spec: AgentSpec) -> None:
    """spec.access.tls: the Secret must hold tls.crt and tls.key (what a kubernetes.io/tls Secret always
    has; another type with both keys serves as well). Its hash stays out of the revision: a rotation
    (cert-manager renewing it) is reloaded by the runtime in place and must not roll the pods. It is a
    dependency all the same, so an Agent waiting for it recovers as soon as it is created."""
    if spec.access is None or spec.access.tls is None:
        return
    secret = spec.access.tls.secret_ref.name
    res.dependencies.add(("Secret", namespace, secret))
    problem = secret_problem(
        store.secret(namespace, secret),
        namespace,
        secret,
        [names.TLS_CERT_KEY, names.TLS_KEY_KEY],
        "serving certificate",
        needs="spec.access.tls needs a kubernetes.io/tls Secret with tls.crt and tls.key",
    )
    if problem is not None:
        res.problem("secrets", *problem)


def _read_services(store: Store, res: Resolution, namespace: str, spec: AgentSpec, cluster_domain: str) -> None:
    """The Services the pods' URLs may name, for their NetworkPolicy's egress (builders/egress.py).
    Each is a dependency: a Service created later, or given another selector or port, brings the
    Agent back, so its policy follows."""
    needs = egress.needs(spec, res.connectors, res.state)
    for service_ns, service in egress.services_read(needs, namespace, cluster_domain):
        res.dependencies.add(("Service", service_ns, service))
        found = store.service(service_ns, service)
        if found is not None:
            res.services[(service_ns, service)] = egress.ServiceView.from_spec(found)


def resolve(
    store: Store, namespace: str, name: str, spec: AgentSpec, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
) -> Resolution:
    res = Resolution()
    _refuse_loops(store, res, namespace, name, spec)
    # Prompt
    if spec.prompt.config_map_ref is not None:
        ref = spec.prompt.config_map_ref
        res.dependencies.add(("ConfigMap", namespace, ref.name))
        cm = store.config_map(namespace, ref.name)
        if cm is None:
            res.problem("prompt", reasons.PROMPT_NOT_FOUND, f"ConfigMap {ref.name} (prompt) not found")
        elif ref.key not in cm.get("data", {}):
            res.problem("prompt", reasons.PROMPT_KEY_MISSING, f"ConfigMap {ref.name} has no key {ref.key}")
        else:
            res.prompt_text = cm["data"][ref.key]
    else:
        res.prompt_text = spec.prompt.system or ""
    # Model credentials and the private CA its endpoint's certificate chains to
    if spec.model.credentials_secret_ref:
        ref = spec.model.credentials_secret_ref
        _need_secret(store, res, namespace, ref.name, [ref.key], "secrets", "model credentials")
    if spec.model.ca_bundle_secret_ref:
        bundle = spec.model.ca_bundle_secret_ref
        _need_secret(store, res, namespace, bundle.name, [bundle.key], "secrets", "model CA bundle")
    _serving_certificate(store, res, namespace, spec)
    # Connectors
    for ref in spec.connectors:
        res.dependencies.add(("Connector", namespace, ref.name))
        body = store.connector(namespace, ref.name)
        if body is None:
            res.problem(
                "connectors", reasons.CONNECTOR_NOT_FOUND, f"Connector {ref.name} not found in namespace {namespace}"
            )
            continue
        try:
            connector = ConnectorSpec.model_validate(body["spec"])
        except ValidationError as exc:
            res.problem("connectors", reasons.CONNECTOR_INVALID, f"Connector {ref.name}: {exc.errors()[0]['msg']}")
            continue
        discovered: tuple[DiscoveredTool, ...] = ()
        if connector.type == "mcp":
            found = _discovered_tools(res, ref.name, ref.tools, body.get("status") or {})
            if found is None:
                continue
            discovered = found
        else:
            unknown = sorted(set(ref.tools) - agent_tools.tool_names(connector))
            if unknown:
                res.problem(
                    "connectors", reasons.TOOL_NOT_FOUND, f"Connector {ref.name} has no tool {', '.join(unknown)}"
                )
                continue
        if connector.ca_bundle_secret_ref:
            before = len(res.problems)
            bundle = connector.ca_bundle_secret_ref
            _need_secret(
                store, res, namespace, bundle.name, [bundle.key], "connectors", f"CA bundle of Connector {ref.name}"
            )
            if len(res.problems) != before:
                continue
        if connector.type == "agent":
            target = _agent_target(store, res, namespace, ref.name, connector)
            if target is not None:
                res.connectors.append(ResolvedConnector(ref=ref, spec=connector, target=target))
            continue
        if connector.auth.secret_ref:
            before = len(res.problems)
            _need_secret(
                store,
                res,
                namespace,
                connector.auth.secret_ref.name,
                SECRET_KEYS_BY_AUTH[connector.auth.type],
                "connectors",
                f"Connector {ref.name}",
            )
            if len(res.problems) != before:
                continue
        res.connectors.append(ResolvedConnector(ref=ref, spec=connector, tools=discovered))
    # State
    if spec.state_policy_ref:
        policy_name = spec.state_policy_ref.name
        res.dependencies.add(("StatePolicy", namespace, policy_name))
        body = store.state_policy(namespace, policy_name)
        if body is None:
            res.problem(
                "state", reasons.STATE_POLICY_NOT_FOUND, f"StatePolicy {policy_name} not found in namespace {namespace}"
            )
        else:
            policy = StatePolicySpec.model_validate(body["spec"])
            policy_ready = next(
                (c for c in (body.get("status") or {}).get("conditions", []) if c.get("type") == "Ready"), None
            )
            if policy_ready is not None and policy_ready.get("status") == "False":
                res.degraded.append(
                    Problem(
                        "state",
                        reasons.STATE_STORE_NOT_READY,
                        f"StatePolicy {policy_name}: {policy_ready.get('message', '')}",
                    )
                )
            redis_url: str | None = None
            password: tuple[str, str] | None = None
            if policy.store.type == "redis" and policy.store.redis:
                if state_store.provisioned(policy):
                    redis_url = state_store.redis_url(policy_name, namespace)
                    password = (names.redis_auth_secret(policy_name), state_store.PASSWORD_KEY)
                else:
                    redis_url = policy.store.redis.url
                    ref = policy.store.redis.password_secret_ref
                    password = (ref.name, ref.key) if ref else None
            if password:
                _need_secret(store, res, namespace, password[0], [password[1]], "state", "Redis password")
            session_key = None
            if policy.store.type == "redis":
                # Made by the StatePolicy's reconcile; its creation brings this Agent back.
                session_key = names.session_key_secret(policy_name)
                _need_secret(store, res, namespace, session_key, [state_store.SESSION_KEY], "state", "session key")
            if policy.encryption:
                ref = policy.encryption.key_secret_ref
                _need_secret(store, res, namespace, ref.name, [ref.key], "state", "encryption key")
            res.state = ResolvedState(
                name=policy_name,
                spec=policy,
                redis_url=redis_url,
                password_secret=password,
                session_key_secret=session_key,
            )
    # Caller keys
    if spec.access and spec.access.api_key_secret_ref:
        secret = spec.access.api_key_secret_ref.name
        res.access_secret = secret
        _need_secret(store, res, namespace, secret, [], "secrets", "caller keys")
    else:
        secret = names.access_secret(name)
        res.access_secret = secret
        res.dependencies.add(("Secret", namespace, secret))
        found = store.secret(namespace, secret)
        if found is None:
            res.generate_access_secret = True
        else:
            res.secret_hashes[secret] = found["hash"]
    _read_services(store, res, namespace, spec, cluster_domain)
    return res
