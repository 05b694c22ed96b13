"""Agents as tools, between real runtime processes: A's model asks for ask_billing, A calls B's
`/v1/chat/completions` with B's caller key, and B's answer comes back in A's reply. A loop that
the operator did not catch (these configs are made by hand) ends at the first runtime that sees
itself again in the call chain, with 508."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from agentfleet_operator.api import AgentSpec
from agentfleet_operator.builders import names
from agentfleet_operator.builders.inputs import ResolvedAgent
from agentfleet_operator.builders.runtime_config import build_runtime_config
from agentfleet_operator.reconcile.resolve import resolve
from agentfleet_operator.reconcile.store import Store

from tests.fakes.llm import FakeLLM
from tests.fakes.runtime import RuntimeProcess, free_port, llm_config, rules_config

ASK_MESSAGE = {
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
}


def _keys(directory: Path, key: str) -> Path:
    directory.mkdir()
    (directory / "apiKey").write_text(key)
    return directory


def _agent_connector(name: str, target: str, endpoint: str, keys: Path, tool: str) -> dict[str, Any]:
    """What the operator renders for an agent Connector (builders/runtime_config.py)."""
    return {
        "name": name,
        "type": "agent",
        "endpoint": endpoint,
        "agent": target,
        "auth": {"type": "bearer", "secretDir": str(keys), "tokenFile": str(keys / "apiKey")},
        "tools": [{"name": tool, "description": f"Ask the {target} agent", "parameters": ASK_MESSAGE}],
        "timeoutSeconds": 10,
        "retries": 0,
    }


def _identity(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": "support", "revision": "r1"}


def _billing(keys: Path) -> dict[str, Any]:
    return rules_config(
        agent=_identity("billing"),
        model={
            "provider": "rules",
            "name": "rules",
            "rules": [{"pattern": r"invoice (?P<n>\d+)", "reply": "Invoice {n} was paid on 3 March."}],
        },
        access={"apiKeysDir": str(keys)},
    )


def _ask(url: str, key: str, text: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "any", "messages": [{"role": "user", "content": text}]},
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=30,
    )


def _reply(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_an_agent_asks_another_agent_and_answers_with_its_reply(
    tmp_path: Path, fake_llm: FakeLLM, spawn_runtime: Any
) -> None:
    billing_keys = _keys(tmp_path / "billing-access", "billing-key-1")
    billing = spawn_runtime(_billing(billing_keys), "billing")
    fake_llm.respond_with_tool_call(r"(?P<q>invoice \d+)", "ask_billing", {"message": "what about {q}?"})
    support = spawn_runtime(
        llm_config(
            fake_llm,
            agent=_identity("support-bot"),
            connectors=[_agent_connector("billing-desk", "billing", billing.url, billing_keys, "ask_billing")],
            access={"apiKeysDir": str(_keys(tmp_path / "support-access", "support-key"))},
        ),
        "support",
    )
    reply = _reply(_ask(support.url, "support-key", "Was invoice 42 paid?"))
    # The fake model repeats the tool's result: that is billing's own answer, from its own process.
    assert reply == "Tool result: Invoice 42 was paid on 3 March."
    offered = fake_llm.requests[0]["tools"][0]["function"]
    assert offered["name"] == "ask_billing" and offered["parameters"]["required"] == ["message"]

    # A key billing does not accept: an explained failure, without the key in the answer.
    other_keys = _keys(tmp_path / "stale", "not-billings-key")
    stale = spawn_runtime(
        llm_config(
            fake_llm,
            agent=_identity("support-bot"),
            connectors=[_agent_connector("billing-desk", "billing", billing.url, other_keys, "ask_billing")],
        ),
        "stale",
    )
    refused = _reply(_ask(stale.url, "unused", "Was invoice 42 paid?"))
    assert "agent billing answered HTTP 401" in refused and "not-billings-key" not in refused


def test_a_target_that_does_not_answer_is_an_explained_failure(
    tmp_path: Path, fake_llm: FakeLLM, spawn_runtime: Any
) -> None:
    keys = _keys(tmp_path / "billing-access", "k")
    fake_llm.respond_with_tool_call(r"invoice", "ask_billing", {"message": "invoice?"})
    nobody = f"http://127.0.0.1:{free_port()}"
    support = spawn_runtime(
        llm_config(
            fake_llm,
            agent=_identity("support-bot"),
            connectors=[_agent_connector("billing-desk", "billing", nobody, keys, "ask_billing")],
        ),
        "support",
    )
    reply = _reply(_ask(support.url, "unused", "invoice 7"))
    assert "agent billing did not answer (ConnectError)" in reply


def test_a_call_chain_holding_the_agent_itself_is_refused_with_508(tmp_path: Path, spawn_runtime: Any) -> None:
    keys = _keys(tmp_path / "billing-access", "billing-key")
    billing = spawn_runtime(_billing(keys), "billing")
    looped = _ask(billing.url, "billing-key", "invoice 1", **{"X-Agentfleet-Call-Chain": "support-bot, billing"})
    assert looped.status_code == 508
    assert looped.json() == {
        "error": {
            "message": "loop detected: support-bot → billing → billing",
            "type": "server_error",
            "param": None,
            "code": "loop_detected",
        }
    }
    # A chain without it is served; a caller without the key still gets 401 first, not 508.
    assert _reply(_ask(billing.url, "billing-key", "invoice 1", **{"X-Agentfleet-Call-Chain": "support-bot"}))
    assert _ask(billing.url, "wrong", "invoice 1", **{"X-Agentfleet-Call-Chain": "billing"}).status_code == 401


def test_a_loop_between_two_runtimes_ends_at_the_first_agent_asked_again(tmp_path: Path) -> None:
    support_keys = _keys(tmp_path / "support-access", "support-key")
    billing_keys = _keys(tmp_path / "billing-access", "billing-key")
    # Each side's config names the other's URL, so both processes get their ports before either starts.
    support, billing = RuntimeProcess({}, tmp_path, "support"), RuntimeProcess({}, tmp_path, "billing")
    with FakeLLM() as support_llm, FakeLLM() as billing_llm:
        support_llm.respond_with_tool_call(r"invoice", "ask_billing", {"message": "invoice question"})
        billing_llm.respond_with_tool_call(r"invoice", "ask_support", {"message": "invoice question back"})
        _configure(
            support,
            llm_config(
                support_llm,
                agent=_identity("support-bot"),
                connectors=[_agent_connector("billing-desk", "billing", billing.url, billing_keys, "ask_billing")],
                access={"apiKeysDir": str(support_keys)},
            ),
        )
        _configure(
            billing,
            llm_config(
                billing_llm,
                agent=_identity("billing"),
                connectors=[_agent_connector("support-desk", "support-bot", support.url, support_keys, "ask_support")],
                access={"apiKeysDir": str(billing_keys)},
            ),
        )
        try:
            support.start()
            billing.start()
            reply = _reply(_ask(support.url, "support-key", "Was my invoice paid?"))
        finally:
            support.stop()
            billing.stop()
        # billing asked support-bot back; support-bot refused (508) instead of reasoning again.
        # The fake models repeat tool results: support-bot's model sees billing's reply, which repeats
        # the error billing's tool call got (a tool failure is JSON for the model).
        prefix = "Tool result: Tool result: "
        assert reply.startswith(prefix), reply
        assert json.loads(reply.removeprefix(prefix)) == {
            "error": "agent support-bot refused the call: loop detected: support-bot → billing → support-bot"
        }
        assert support_llm.request_count == 2  # the caller's question and the tool result, nothing re-entered
        assert billing_llm.request_count == 2
        sent = {k.lower() for k in billing_llm.headers_seen[0]}
        assert "x-agentfleet-call-chain" not in sent  # the chain goes to agents, never to the model provider


def _configure(process: RuntimeProcess, config: dict[str, Any]) -> None:
    config = {**config, "server": {"host": "127.0.0.1", "port": process.port}}
    process.config_path.write_text(json.dumps(config))


SAMPLE = Path(__file__).resolve().parents[3] / "manifests" / "samples" / "agents-as-tools.yaml"


def _rendered_sample(secrets_root: Path) -> dict[str, dict[str, Any]]:
    """The sample's runtime configs as the operator renders them (resolve + build_runtime_config),
    with the pods' Secret mount root moved to a local directory."""
    docs = [d for d in yaml.safe_load_all(SAMPLE.read_text()) if d]
    namespace = docs[0]["metadata"]["namespace"]
    store = Store()
    store.indexes = {
        "agents_idx": {(namespace, d["metadata"]["name"]): [d] for d in docs if d["kind"] == "Agent"},
        "connectors_idx": {(namespace, d["metadata"]["name"]): [d] for d in docs if d["kind"] == "Connector"},
        "secrets_idx": {},
        "configmaps_idx": {},
    }
    configs = {}
    for _, name in store.indexes["agents_idx"]:
        # The generated access Secret of every Agent, with one key, as the operator creates it.
        (secrets_root / names.access_secret(name)).mkdir(parents=True)
        (secrets_root / names.access_secret(name) / "apiKey").write_text(f"{name}-key")
        store.indexes["secrets_idx"][(namespace, names.access_secret(name))] = [{"hash": name, "keys": ["apiKey"]}]  # type: ignore[index]
    for (_, name), (doc,) in store.indexes["agents_idx"].items():
        spec = AgentSpec.model_validate(doc["spec"])
        res = resolve(store, namespace, name, spec)
        assert res.problems == [], res.problems
        agent = ResolvedAgent(
            name=name,
            namespace=namespace,
            uid="u",
            spec=spec,
            image="runtime",
            prompt_text=res.prompt_text,
            connectors=tuple(res.connectors),
            access_secret=res.access_secret,
            secret_hashes=res.secret_hashes,
        )
        text = json.dumps(build_runtime_config(agent, "r1")).replace(names.SECRETS_DIR, str(secrets_root))
        configs[name] = json.loads(text)
    return configs


def test_the_sample_as_the_operator_renders_it_runs_between_two_runtimes(tmp_path: Path, spawn_runtime: Any) -> None:
    configs = _rendered_sample(tmp_path / "secrets")
    billing = spawn_runtime(configs["billing"], "billing")
    frontdesk_config = configs["frontdesk"]
    (connector,) = frontdesk_config["connectors"]
    assert connector["endpoint"] == "http://billing.agentfleet-demo.svc:8080"
    connector["endpoint"] = billing.url  # what the Service would route to
    frontdesk = spawn_runtime(frontdesk_config, "frontdesk")
    reply = _reply(_ask(frontdesk.url, "frontdesk-key", "Hello, was invoice 42 paid?"))
    assert reply == "Billing says: Invoice 42 was paid on 3 March."


def _requests_answered(url: str, code: str, agent: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    line = f'agent_requests_total{{agent="{agent}",code="{code}",revision="r1"}} '
    return next((float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)), 0.0)


def test_the_asked_agent_gets_what_is_left_of_the_callers_deadline(
    tmp_path: Path, fake_llm: FakeLLM, spawn_runtime: Any
) -> None:
    # billing's own model takes a minute; support-bot's whole budget is 3 s. Told the budget, billing
    # gives up with it (504) instead of working a minute on an answer nobody waits for any more.
    billing_keys = _keys(tmp_path / "billing-access", "billing-key-1")
    with FakeLLM() as slow_model:
        slow_model.delay = 60
        billing = spawn_runtime(
            llm_config(slow_model, agent=_identity("billing"), access={"apiKeysDir": str(billing_keys)}), "billing"
        )
        fake_llm.respond_with_tool_call(r"(?P<q>invoice \d+)", "ask_billing", {"message": "what about {q}?"})
        model = llm_config(fake_llm)["model"]
        support = spawn_runtime(
            llm_config(
                fake_llm,
                agent=_identity("support-bot"),
                model={**model, "deadlineSeconds": 3},
                connectors=[_agent_connector("billing-desk", "billing", billing.url, billing_keys, "ask_billing")],
            ),
            "support",
        )
        answer = httpx.post(
            f"{support.url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Was invoice 42 paid?"}]},
            timeout=30,
        )
        assert answer.status_code == 504 and "spec.model.timeoutSeconds" in answer.json()["error"]["message"]
        deadline = time.monotonic() + 10
        while _requests_answered(billing.url, "504", "billing") < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _requests_answered(billing.url, "504", "billing") == 1, billing.logs()[-2000:]
        slow_model.released.set()  # let the fake's handler threads go
