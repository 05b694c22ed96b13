"""The runtime's config file, rendered from a resolved Agent.

The schema is the contract shared with the runtime (agentfleet_contract.runtime_config): the
builder fills its models with types, so a field the runtime does not know fails here, before
anything reaches the cluster. Secrets appear only as file paths.

The file leaves out what the Agent does not set (no key rather than an empty one, the runtime's
defaults apply). Every Agent's revision hashes this document, so it must stay the same for the same
Agent: tests/unit/test_runtime_config_document.py pins it byte for byte.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from agentfleet_contract.runtime_config import (
    AccessConfig,
    AgentIdentity,
    CacheConfig,
    CircuitBreaker,
    ConnectorAuth,
    ConnectorConfig,
    ModelConfig,
    RateLimit,
    Rule,
    RuntimeConfig,
    ServerConfig,
    ServerTLS,
    StateConfig,
    ToolConfig,
)

from ..api.base import CABundleReference
from ..api.connector import SECRET_KEYS_BY_AUTH
from . import agent_tools, names, state_store
from .inputs import AgentTarget, ResolvedAgent, ResolvedConnector
from .mcp_tools import model_tool_name


def secret_mounts(agent: ResolvedAgent) -> dict[str, set[str]]:
    """Secret name → keys the pods read. Each Secret is mounted read-only under SECRETS_DIR."""
    mounts: dict[str, set[str]] = defaultdict(set)
    spec = agent.spec
    if spec.model.credentials_secret_ref:
        mounts[spec.model.credentials_secret_ref.name].add(spec.model.credentials_secret_ref.key)
    if spec.model.ca_bundle_secret_ref:
        mounts[spec.model.ca_bundle_secret_ref.name].add(spec.model.ca_bundle_secret_ref.key)
    if agent.tls_secret:
        # A Secret volume like the others (items, no subPath), so the kubelet replaces the files in
        # place when the Secret rotates and the runtime reloads them.
        mounts[agent.tls_secret].update((names.TLS_CERT_KEY, names.TLS_KEY_KEY))
    for connector in agent.connectors:
        auth = connector.spec.auth
        if auth.secret_ref:
            mounts[auth.secret_ref.name].update(SECRET_KEYS_BY_AUTH[auth.type])
        bundle = connector.spec.ca_bundle_secret_ref
        if bundle:
            mounts[bundle.name].add(bundle.key)
        if connector.target is not None:  # the key this Agent presents to the Agent it asks
            mounts[connector.target.access_secret].add(connector.target.key)
    if agent.state:
        if agent.state.password_secret:
            secret, key = agent.state.password_secret
            mounts[secret].add(key)
        if agent.state.spec.encryption:
            ref = agent.state.spec.encryption.key_secret_ref
            mounts[ref.name].add(ref.key)
        if agent.state.session_key_secret:
            mounts[agent.state.session_key_secret].add(state_store.SESSION_KEY)
    if agent.access_secret:
        # Every key is an accepted caller key, so the Secret is mounted whole, even when it is also
        # the access Secret of an Agent this one asks (one Secret shared by both).
        mounts[agent.access_secret] = set()
    return dict(mounts)


def _given(**optional: Any) -> dict[str, Any]:
    """The optional fields the Agent sets; unset (None) or empty ones stay out of the file."""
    return {key: value for key, value in optional.items() if value is not None and value != "" and value != []}


def _secret_file(secret: str, key: str) -> str:
    return f"{names.secret_dir(secret)}/{key}"


def _ca_file(ref: CABundleReference | None) -> str | None:
    return _secret_file(ref.name, ref.key) if ref else None


def _model(agent: ResolvedAgent) -> ModelConfig:
    model = agent.spec.model
    ref = model.credentials_secret_ref
    return ModelConfig(
        provider=model.provider,
        name=model.name,
        temperature=model.temperature,
        **_given(
            endpoint=model.endpoint,
            max_tokens=model.max_tokens,
            deadline_seconds=model.timeout_seconds,
            api_key_file=_secret_file(ref.name, ref.key) if ref else None,
            ca_file=_ca_file(model.ca_bundle_secret_ref),
            rules=[
                Rule(pattern=rule.pattern, arguments=dict(rule.arguments), **_given(tool=rule.tool, reply=rule.reply))
                for rule in model.rules
            ],
        ),
    )


def _auth(connector: ResolvedConnector) -> ConnectorAuth:
    auth = connector.spec.auth
    return ConnectorAuth(
        type=auth.type,
        **_given(
            secret_dir=names.secret_dir(auth.secret_ref.name) if auth.secret_ref else None,
            header=auth.header,
            token_url=auth.token_url,
            scopes=list(auth.scopes),
        ),
    )


def _tools(resolved: ResolvedConnector) -> list[ToolConfig]:
    if resolved.spec.type == "mcp":
        # Discovered, and already filtered by the Connector's and the Agent's lists.
        return [
            ToolConfig(
                name=model_tool_name(tool.name),
                description=tool.description,
                parameters=tool.input_schema,
                **_given(
                    remote_name=tool.name if model_tool_name(tool.name) != tool.name else None,
                    idempotent=True if tool.idempotent else None,
                ),
            )
            for tool in resolved.tools
        ]
    wanted = set(resolved.ref.tools)  # empty: every tool of the Connector
    return [
        ToolConfig(
            name=tool.name,
            description=tool.description,
            method=tool.method,
            path=tool.path,
            parameters=tool.parameters,
            **_given(cache_seconds=tool.cache_seconds),
        )
        for tool in resolved.spec.tools
        if not wanted or tool.name in wanted
    ]


def _limits(resolved: ResolvedConnector) -> dict[str, Any]:
    """The rate limit, breaker thresholds and CA bundle, only when the Connector sets them: a Connector
    without them must render the same document as before they existed (the revision hashes it)."""
    spec = resolved.spec
    breaker = spec.circuit_breaker
    return _given(
        rate_limit=RateLimit(requests_per_second=spec.rate_limit.requests_per_second) if spec.rate_limit else None,
        circuit_breaker=(
            CircuitBreaker(failures=breaker.failures, open_seconds=breaker.open_seconds) if breaker else None
        ),
        ca_file=_ca_file(spec.ca_bundle_secret_ref),
    )


def _agent_connector(resolved: ResolvedConnector, target: AgentTarget) -> ConnectorConfig:
    """Another Agent as one tool: its Service, its caller key as a bearer token, one message in."""
    spec = resolved.spec
    secret_dir = names.secret_dir(target.access_secret)
    return ConnectorConfig(
        name=resolved.ref.name,
        type="agent",
        endpoint=target.endpoint,
        agent=target.name,
        auth=ConnectorAuth(type="bearer", secret_dir=secret_dir, token_file=f"{secret_dir}/{target.key}"),
        tools=[
            ToolConfig(
                name=agent_tools.tool_name(spec),
                description=agent_tools.tool_description(spec),
                parameters=agent_tools.MESSAGE_PARAMETERS,
            )
        ],
        timeout_seconds=spec.timeout_seconds,
        retries=spec.retries,
        **_limits(resolved),
    )


def _connector(resolved: ResolvedConnector) -> ConnectorConfig:
    if resolved.target is not None:
        return _agent_connector(resolved, resolved.target)
    spec = resolved.spec
    return ConnectorConfig(
        name=resolved.ref.name,
        type=spec.type,
        endpoint=resolved.endpoint,
        auth=_auth(resolved),
        tools=_tools(resolved),
        timeout_seconds=spec.timeout_seconds,
        retries=spec.retries,
        **_limits(resolved),
    )


def _state(agent: ResolvedAgent) -> StateConfig | None:
    if not agent.state:
        return None
    policy = agent.state.spec
    password = agent.state.password_secret
    encryption = policy.encryption.key_secret_ref if policy.encryption else None
    return StateConfig(
        store=policy.store.type,
        ttl_seconds=policy.session.ttl_seconds,
        max_turns=policy.session.max_turns,
        **_given(
            redis_url=agent.state.redis_url,
            redis_password_file=_secret_file(*password) if password else None,
            encryption_key_file=_secret_file(encryption.name, encryption.key) if encryption else None,
            session_key_file=(
                _secret_file(agent.state.session_key_secret, state_store.SESSION_KEY)
                if agent.state.session_key_secret
                else None
            ),
            redaction=list(policy.redaction.patterns) if policy.redaction else None,
        ),
    )


def _server_tls(agent: ResolvedAgent) -> ServerTLS | None:
    """The serving certificate's file paths: its Secret's name is in the revision this way, its
    content is not (a rotation is reloaded, not rolled out)."""
    if not agent.tls_secret:
        return None
    return ServerTLS(
        cert_file=_secret_file(agent.tls_secret, names.TLS_CERT_KEY),
        key_file=_secret_file(agent.tls_secret, names.TLS_KEY_KEY),
    )


def build_runtime_config(agent: ResolvedAgent, revision: str) -> dict[str, Any]:
    """The config file as a JSON-ready dict (camelCase), built from the contract's models."""
    access_dir = names.secret_dir(agent.access_secret) if agent.access_secret else None
    config = RuntimeConfig(
        agent=AgentIdentity(name=agent.name, namespace=agent.namespace, revision=revision),
        model=_model(agent),
        system_prompt=agent.prompt_text,
        connectors=[_connector(connector) for connector in agent.connectors],
        access=AccessConfig(**_given(api_keys_dir=access_dir)),
        server=ServerConfig(port=names.RUNTIME_PORT, **_given(tls=_server_tls(agent))),
        **_given(
            state=_state(agent),
            cache=CacheConfig(ttl_seconds=agent.spec.cache.ttl_seconds) if agent.spec.cache else None,
        ),
    )
    # exclude_unset: a field the builder did not set keeps the runtime's default and is not written.
    return config.model_dump(by_alias=True, exclude_unset=True, mode="json")


def revision_inputs(agent: ResolvedAgent) -> dict[str, Any]:
    """The config without the revision itself: what the revision hash is computed from."""
    config = build_runtime_config(agent, revision="pending")
    config["agent"].pop("revision")
    return config
