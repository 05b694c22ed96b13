"""The runtime's parts built once from its configuration: reasoner, tools, memory, answer cache, auth,
metrics.

Kept apart from the HTTP layer so the routes receive one wired object (like kopf's memo) and
tests can build or replace it without a server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from . import __version__
from .agent import Agent
from .auth import CallerAuth
from .config import RuntimeConfig
from .memory.answer_cache import AnswerCache
from .memory.base import SessionMemory
from .memory.crypto import RecordCipher
from .memory.memory_store import InMemoryBackend
from .memory.redaction import Redactor
from .metrics import RuntimeMetrics
from .perception import Limits
from .reasoning.base import Reasoner
from .reasoning.openai_compatible import OpenAICompatibleReasoner
from .reasoning.rules import RulesReasoner
from .request_params import defaults
from .tls import OutboundClients, ServerCertificate
from .tools.toolbox import ToolBox


@dataclass
class Runtime:
    """Everything the handlers share, built once from the configuration."""

    config: RuntimeConfig
    metrics: RuntimeMetrics
    caller_auth: CallerAuth
    agent: Agent
    memory: SessionMemory | None
    http: httpx.AsyncClient  # the default outbound client (public CAs), one of `clients`
    limits: Limits
    redactor: Redactor
    clients: OutboundClients | None = None
    tls: ServerCertificate | None = None  # serving HTTPS: the certificate, reloaded on rotation

    async def aclose(self) -> None:
        await self.agent.reasoner.aclose()
        # Before the shared HTTP clients: an MCP session says goodbye to its server on close, and
        # that request may need a fresh OAuth token, which is fetched with a shared client.
        await self.agent.tools.aclose()
        if self.memory is not None:
            await self.memory.aclose()
        if self.clients is not None:
            await self.clients.aclose()  # the default client with the others
        else:
            await self.http.aclose()


@dataclass
class StateStore:
    """What the StatePolicy gives the pods: one backend (one Redis connection pool) for the sessions
    and the answer cache, and the keys both protect their data with."""

    backend: Any
    cipher: RecordCipher | None
    key_secret: bytes | None


def build_store(config: RuntimeConfig) -> StateStore | None:
    state = config.state
    if state is None:
        return None
    if state.store == "redis":
        from .memory.redis_store import RedisBackend  # redis is only needed when configured

        assert state.redis_url is not None
        backend: Any = RedisBackend(
            state.redis_url,
            ttl_seconds=state.ttl_seconds,
            max_turns=state.max_turns,
            password_file=state.redis_password_file,
        )
    else:
        backend = InMemoryBackend(ttl_seconds=state.ttl_seconds, max_turns=state.max_turns)
    cipher = RecordCipher.from_file(state.encryption_key_file) if state.encryption_key_file else None
    key_secret = Path(state.session_key_file).read_bytes().strip() if state.session_key_file else None
    return StateStore(backend, cipher, key_secret)


def build_memory(config: RuntimeConfig, redactor: Redactor, store: StateStore | None = None) -> SessionMemory | None:
    store = store or build_store(config)
    if store is None:
        return None
    return SessionMemory(
        store.backend,
        namespace=config.agent.namespace,
        agent=config.agent.name,
        redactor=redactor,
        cipher=store.cipher,
        key_secret=store.key_secret,
    )


def build_answer_cache(
    config: RuntimeConfig, redactor: Redactor, store: StateStore | None, metrics: RuntimeMetrics | None
) -> AnswerCache | None:
    """spec.cache: answers kept in the StatePolicy's store (Redis: shared by every pod; memory: per pod)."""
    if config.cache is None or store is None or config.state is None:
        return None
    key_secret = store.key_secret
    if key_secret is None and config.state.store == "memory":
        # Keys that never leave the process: a key of its own keeps them HMACs like the Redis ones.
        key_secret = os.urandom(32)
    return AnswerCache(
        store.backend,
        namespace=config.agent.namespace,
        agent=config.agent.name,
        revision=config.agent.revision,
        ttl_seconds=config.cache.ttl_seconds,
        redactor=redactor,
        cipher=store.cipher,
        key_secret=key_secret,
        metrics=metrics,
    )


def _http_client(verify: Any = True) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        follow_redirects=False,
        headers={"User-Agent": f"agentfleet-runtime/{__version__}"},
        verify=verify,
    )


def build_server_certificate(config: RuntimeConfig, metrics: RuntimeMetrics) -> ServerCertificate | None:
    """The certificate HTTPS is served with (server.tls), its reloads counted in the metrics."""
    tls = config.server.tls
    if tls is None:
        return None

    def reloaded(result: str, info: Any) -> None:
        metrics.tls_certificate(result, info.not_after.timestamp() if info is not None else None)

    certificate = ServerCertificate(tls.cert_file, tls.key_file, on_reload=reloaded)
    for result in ("success", "error"):
        metrics.tls_reloads.labels(result)  # both series exist from the start, at 0
    metrics.tls_certificate(None, certificate.info.not_after.timestamp())
    return certificate


def build_runtime(config: RuntimeConfig, *, metrics: RuntimeMetrics | None = None) -> Runtime:
    metrics = metrics or RuntimeMetrics(config.agent.name, config.agent.revision)
    redactor = Redactor(config.state.redaction if config.state else [])
    # One client per trust: the default for public certificates, one per private CA bundle (caFile).
    clients = OutboundClients(_http_client(), make=_http_client)
    http = clients.default
    tools = ToolBox(config.connectors, clients, metrics)
    reasoner: Reasoner
    if config.model.provider == "rules":
        reasoner = RulesReasoner(config.model)
    else:
        reasoner = OpenAICompatibleReasoner(config.model, clients.client(config.model.ca_file), metrics)
    store = build_store(config)
    memory = build_memory(config, redactor, store)
    agent = Agent(
        system_prompt=config.system_prompt,
        reasoner=reasoner,
        tools=tools,
        memory=memory,
        cache=build_answer_cache(config, redactor, store, metrics),
        default_params=defaults(config.model),
    )
    return Runtime(
        config=config,
        metrics=metrics,
        caller_auth=CallerAuth(config.access.api_keys_dir),
        agent=agent,
        memory=memory,
        http=http,
        limits=Limits(config.server.max_request_bytes, config.server.max_message_chars),
        redactor=redactor,
        clients=clients,
        tls=build_server_certificate(config, metrics),
    )
