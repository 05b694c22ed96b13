"""The runtime's config file, rendered from a resolved Agent.

The schema is the runtime's own pydantic model (agentfleet_runtime.config): one contract for both
sides, validated here before anything reaches the cluster. Secrets appear only as file paths.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from agentfleet_runtime.config import RuntimeConfig

from ..api.connector import SECRET_KEYS_BY_AUTH
from . import names
from .inputs import ResolvedAgent


def secret_mounts(agent: ResolvedAgent) -> dict[str, set[str]]:
    """Secret name → keys the pods read. Each Secret is mounted read-only under SECRETS_DIR."""
    mounts: dict[str, set[str]] = defaultdict(set)
    spec = agent.spec
    if spec.model.credentials_secret_ref:
        mounts[spec.model.credentials_secret_ref.name].add(spec.model.credentials_secret_ref.key)
    for connector in agent.connectors:
        auth = connector.spec.auth
        if auth.secret_ref:
            mounts[auth.secret_ref.name].update(SECRET_KEYS_BY_AUTH[auth.type])
    if agent.state:
        if agent.state.password_secret:
            secret, key = agent.state.password_secret
            mounts[secret].add(key)
        if agent.state.spec.encryption:
            ref = agent.state.spec.encryption.key_secret_ref
            mounts[ref.name].add(ref.key)
    if agent.access_secret:
        mounts.setdefault(agent.access_secret, set())  # every key is an accepted caller key
    return dict(mounts)


def _connector(agent: ResolvedAgent, index: int) -> dict[str, Any]:
    resolved = agent.connectors[index]
    spec = resolved.spec
    wanted = set(resolved.ref.tools)
    tools = [t.to_wire() for t in spec.tools if not wanted or t.name in wanted]
    auth: dict[str, Any] = {"type": spec.auth.type}
    if spec.auth.secret_ref:
        auth["secretDir"] = names.secret_dir(spec.auth.secret_ref.name)
    if spec.auth.header:
        auth["header"] = spec.auth.header
    if spec.auth.token_url:
        auth["tokenURL"] = spec.auth.token_url
    if spec.auth.scopes:
        auth["scopes"] = list(spec.auth.scopes)
    out: dict[str, Any] = {
        "name": resolved.ref.name,
        "type": spec.type,
        "endpoint": spec.endpoint,
        "auth": auth,
        "tools": tools,
        "timeoutSeconds": spec.timeout_seconds,
        "retries": spec.retries,
    }
    if spec.rate_limit:
        out["rateLimit"] = {"requestsPerSecond": spec.rate_limit.requests_per_second}
    return out


def build_runtime_config(agent: ResolvedAgent, revision: str) -> dict[str, Any]:
    """The config file as a JSON-ready dict (camelCase), validated against the runtime's model."""
    spec = agent.spec
    model: dict[str, Any] = {
        "provider": spec.model.provider,
        "name": spec.model.name,
        "temperature": spec.model.temperature,
    }
    if spec.model.endpoint:
        model["endpoint"] = spec.model.endpoint
    if spec.model.max_tokens:
        model["maxTokens"] = spec.model.max_tokens
    if spec.model.credentials_secret_ref:
        ref = spec.model.credentials_secret_ref
        model["apiKeyFile"] = f"{names.secret_dir(ref.name)}/{ref.key}"
    if spec.model.rules:
        model["rules"] = [rule.to_wire() for rule in spec.model.rules]
    config: dict[str, Any] = {
        "agent": {"name": agent.name, "namespace": agent.namespace, "revision": revision},
        "model": model,
        "systemPrompt": agent.prompt_text,
        "connectors": [_connector(agent, i) for i in range(len(agent.connectors))],
        "access": {"apiKeysDir": names.secret_dir(agent.access_secret)} if agent.access_secret else {},
        "server": {"port": names.RUNTIME_PORT},
    }
    if agent.state:
        policy = agent.state.spec
        state: dict[str, Any] = {
            "store": policy.store.type,
            "ttlSeconds": policy.session.ttl_seconds,
            "maxTurns": policy.session.max_turns,
        }
        if agent.state.redis_url:
            state["redisURL"] = agent.state.redis_url
        if agent.state.password_secret:
            secret, key = agent.state.password_secret
            state["redisPasswordFile"] = f"{names.secret_dir(secret)}/{key}"
        if policy.encryption:
            ref = policy.encryption.key_secret_ref
            state["encryptionKeyFile"] = f"{names.secret_dir(ref.name)}/{ref.key}"
        if policy.redaction and policy.redaction.patterns:
            state["redaction"] = list(policy.redaction.patterns)
        config["state"] = state
    # Fails loudly (a bug of ours, not the user's) if operator and runtime ever disagree on the format.
    RuntimeConfig.model_validate(config)
    return config


def revision_inputs(agent: ResolvedAgent) -> dict[str, Any]:
    """The config without the revision itself: what the revision hash is computed from."""
    config = build_runtime_config(agent, revision="pending")
    config["agent"].pop("revision")
    return config
