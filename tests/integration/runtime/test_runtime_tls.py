"""TLS, as real processes and real handshakes, with certificates the tests make (tests/fakes/tls.py).

Inbound: the runtime serves HTTPS from a Secret volume laid out as the kubelet writes one, the
official OpenAI SDK talks to it trusting the test CA, plain HTTP gets no answer, and a rotation (a new
directory, `..data` swapped) under load from several threads, each request on a new connection,
fails no request while the new connections get the new certificate. A broken new pair keeps the old
one. Outbound: a model and a Connector whose certificates a private CA signed are refused with a
clear reason without `caFile`, and reached with it.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.crm import FakeCRM
from tests.fakes.llm import FakeLLM
from tests.fakes.mcp import start_demo_mcp
from tests.fakes.runtime import crm_connector, llm_config, rules_config, runtime_client, wait_until
from tests.fakes.tls import Issued, SecretVolume, TestCA, TlsTerminator, peer_serial

pytestmark = pytest.mark.integration

HELLO = {"model": "x", "messages": [{"role": "user", "content": "hello"}]}
REPLY = "Hello! How can I help you today?"


@pytest.fixture
def ca() -> TestCA:
    return TestCA()


def tls_runtime(spawn_runtime: Any, ca: TestCA, volume: SecretVolume, issued: Issued, **server: Any) -> Any:
    volume.write_pair(issued)
    tls = {"certFile": str(volume.file("tls.crt")), "keyFile": str(volume.file("tls.key")), **server}
    return spawn_runtime(rules_config(server={"tls": tls}), verify=ca.client_context())


def reloads(runtime: Any, trust: ssl.SSLContext) -> dict[str, float]:
    text = httpx.get(f"{runtime.url}/metrics", verify=trust, timeout=5).text
    found = re.findall(r'^agent_tls_certificate_reloads_total\{result="(\w+)"\} (\S+)$', text, re.MULTILINE)
    return {result: float(value) for result, value in found}


def test_https_with_the_openai_sdk_and_no_plain_http(tmp_path: Path, ca: TestCA, spawn_runtime: Any) -> None:
    runtime = tls_runtime(spawn_runtime, ca, SecretVolume(tmp_path / "tls"), ca.issue())
    assert runtime.url.startswith("https://")
    with httpx.Client(verify=ca.client_context()) as http:
        client = openai.OpenAI(base_url=f"{runtime.url}/v1", api_key="unused", max_retries=0, http_client=http)
        completion = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hello"}])
        assert completion.choices[0].message.content == REPLY
        stream = client.chat.completions.create(model="x", stream=True, messages=[{"role": "user", "content": "hello"}])
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == REPLY

    # A client that does not trust the CA refuses the certificate; plain HTTP gets no HTTP answer.
    with (
        httpx.Client() as untrusting,
        pytest.raises(openai.APIConnectionError) as refused,
    ):
        openai.OpenAI(
            base_url=f"{runtime.url}/v1", api_key="unused", max_retries=0, http_client=untrusting
        ).chat.completions.create(model="x", messages=[{"role": "user", "content": "hello"}])
    assert isinstance(refused.value.__cause__, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value.__cause__)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{runtime.port}/healthz", timeout=5)
    # The server shrugged both off and still serves.
    assert httpx.get(f"{runtime.url}/readyz", verify=ca.client_context(), timeout=5).status_code == 200
    assert reloads(runtime, ca.client_context()) == {"success": 0.0, "error": 0.0}


class Load:
    """Threads calling the runtime until stopped, each request on a new connection (a new handshake),
    plus one thread on a kept-alive connection opened before the rotation."""

    def __init__(self, url: str, trust: ssl.SSLContext, threads: int = 6) -> None:
        self.url, self.trust = url, trust
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._fresh, daemon=True) for _ in range(threads)]
        self.threads.append(threading.Thread(target=self._kept_alive, daemon=True))

    def _record(self, response: httpx.Response | None, error: Exception | None) -> None:
        with self.lock:
            if error is not None:
                self.failures.append(f"{type(error).__name__}: {error}")
            elif response is not None and (response.status_code != 200 or REPLY not in response.text):
                self.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
            else:
                self.ok += 1

    def _fresh(self) -> None:
        deadline = time.monotonic() + 60  # bounded whatever happens to the test
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                # A new client per request: a new TCP connection and a full TLS handshake every time.
                with httpx.Client(verify=self.trust, timeout=10) as client:
                    response = client.post(f"{self.url}/v1/chat/completions", json=HELLO)
            except Exception as exc:
                self._record(None, exc)
            else:
                self._record(response, None)

    def _kept_alive(self) -> None:
        deadline = time.monotonic() + 60
        with httpx.Client(verify=self.trust, timeout=10) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                try:
                    response = client.post(f"{self.url}/v1/chat/completions", json=HELLO)
                except Exception as exc:
                    self._record(None, exc)
                else:
                    self._record(response, None)
                time.sleep(0.02)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def count(self) -> int:
        with self.lock:
            return self.ok + len(self.failures)


def test_rotation_under_load_fails_no_request(tmp_path: Path, ca: TestCA, spawn_runtime: Any) -> None:
    volume = SecretVolume(tmp_path / "tls")
    first = ca.issue()
    runtime = tls_runtime(spawn_runtime, ca, volume, first, reloadIntervalSeconds=0.2)
    trust = ca.client_context()
    assert peer_serial("127.0.0.1", runtime.port, trust) == first.serial

    second = ca.issue()  # the same CA, a new key and serial: what cert-manager does on renewal
    assert second.serial != first.serial
    with Load(runtime.url, trust) as load:
        wait_until(lambda: load.count() >= 50, timeout=30, what="requests before the rotation")
        volume.write_pair(second)
        rotated_at = load.count()
        wait_until(
            lambda: peer_serial("127.0.0.1", runtime.port, trust) == second.serial,
            timeout=15,
            what="new connections to get the new certificate",
        )
        wait_until(lambda: load.count() >= rotated_at + 100, timeout=30, what="requests after the rotation")
    assert load.failures == [], f"{len(load.failures)} of {load.count()} requests failed: {load.failures[:5]}"
    assert load.ok >= 150
    # With a server name too (SNI), and the process never restarted.
    assert peer_serial("127.0.0.1", runtime.port, trust, server_name="localhost") == second.serial
    assert runtime.process.poll() is None
    assert reloads(runtime, trust) == {"success": 1.0, "error": 0.0}
    logs = runtime.logs()
    assert "TLS certificate reloaded" in logs and format(second.serial, "x") in logs
    assert "PRIVATE KEY" not in logs


def test_a_broken_new_pair_keeps_the_old_one(tmp_path: Path, ca: TestCA, spawn_runtime: Any) -> None:
    volume = SecretVolume(tmp_path / "tls")
    first = ca.issue()
    runtime = tls_runtime(spawn_runtime, ca, volume, first, reloadIntervalSeconds=0.2)
    trust = ca.client_context()
    mismatched = ca.issue()
    # A new certificate with the old key: they do not belong together.
    volume.write({"tls.crt": mismatched.cert_pem, "tls.key": first.key_pem})
    wait_until(lambda: reloads(runtime, trust).get("error") == 1.0, timeout=15, what="the failed reload counted")
    assert peer_serial("127.0.0.1", runtime.port, trust) == first.serial
    assert httpx.get(f"{runtime.url}/readyz", verify=trust, timeout=5).status_code == 200
    assert "TLS certificate not reloaded" in runtime.logs()
    time.sleep(1)  # the same broken pair is reported once, not on every look
    assert reloads(runtime, trust) == {"success": 0.0, "error": 1.0}

    good = ca.issue()
    volume.write_pair(good)
    wait_until(lambda: peer_serial("127.0.0.1", runtime.port, trust) == good.serial, timeout=15, what="the good pair")
    assert reloads(runtime, trust) == {"success": 1.0, "error": 1.0}


def test_a_runtime_whose_certificate_cannot_load_does_not_start(tmp_path: Path, ca: TestCA) -> None:
    from tests.fakes.runtime import RuntimeProcess

    volume = SecretVolume(tmp_path / "tls")
    first, second = ca.issue(), ca.issue()
    volume.write({"tls.crt": first.cert_pem, "tls.key": second.key_pem})
    tls = {"certFile": str(volume.file("tls.crt")), "keyFile": str(volume.file("tls.key"))}
    process = RuntimeProcess(rules_config(server={"tls": tls}), tmp_path)
    with pytest.raises(AssertionError, match="runtime exited early"):
        process.start()
    assert process.process is not None and process.process.wait(timeout=10) == 2
    assert "cannot load the TLS certificate" in process.logs()
    assert "KEY_VALUES_MISMATCH" in process.logs()


# ---- outbound: a private CA -----------------------------------------------------------------------


@pytest.fixture
def private_llm(tmp_path: Path, ca: TestCA) -> Iterator[FakeLLM]:
    llm = FakeLLM()
    llm.tls = ca.server_context(ca.issue(), tmp_path)
    with llm:
        yield llm  # type: ignore[misc]


def test_a_model_behind_a_private_ca(tmp_path: Path, ca: TestCA, private_llm: FakeLLM, spawn_runtime: Any) -> None:
    assert private_llm.url.startswith("https://")
    refused = spawn_runtime(llm_config(private_llm), name="without-ca")
    response = httpx.post(f"{refused.url}/v1/chat/completions", json=HELLO, timeout=30)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "model_tls_untrusted"
    assert "not trusted" in error["message"] and "caBundleSecretRef" in error["message"]
    assert private_llm.request_count == 0

    config = llm_config(private_llm)
    config["model"]["caFile"] = str(ca.write(tmp_path / "ca.crt"))
    trusted = spawn_runtime(config, name="with-ca")
    response = httpx.post(f"{trusted.url}/v1/chat/completions", json=HELLO, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hello"


async def test_a_connector_behind_a_private_ca(tmp_path: Path, ca: TestCA) -> None:
    crm = FakeCRM()
    crm.tls = ca.server_context(ca.issue(), tmp_path)
    ask = {"content": "please find customer ada@example.com"}
    with crm:
        async with runtime_client(rules_config(connectors=[crm_connector(crm)])) as client:  # type: ignore[arg-type]
            body = (await client.post("/v1/sessions/s/messages", json=ask)).json()
        assert body["toolCalls"][0]["outcome"] == "tls_error"
        assert crm.requests == []  # type: ignore[attr-defined]

        connector = crm_connector(crm, caFile=str(ca.write(tmp_path / "ca.crt")))  # type: ignore[arg-type]
        async with runtime_client(rules_config(connectors=[connector])) as client:
            body = (await client.post("/v1/sessions/s/messages", json=ask)).json()
        assert body["reply"] == "Customer Ada Lovelace is on the gold tier."
        assert body["toolCalls"][0]["outcome"] == "success"


async def test_an_mcp_connector_behind_a_private_ca(tmp_path: Path, ca: TestCA) -> None:
    server = start_demo_mcp()
    proxy = TlsTerminator(ca.server_context(ca.issue(), tmp_path), server.port)
    try:
        endpoint = f"https://127.0.0.1:{proxy.port}/mcp"
        lookup = {
            "name": "lookup_order",
            "description": "Look up an order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            "idempotent": True,
        }
        rule = {
            "pattern": r"order (?P<id>[A-Z]-\d+)",
            "tool": "lookup_order",
            "arguments": {"order_id": "{id}"},
            "reply": "Order {tool_result[orderId]} is {tool_result[status]}.",
        }
        connector = {"name": "orders", "type": "mcp", "endpoint": endpoint, "tools": [lookup], "timeoutSeconds": 10}
        ask = {"content": "where is order A-1001"}

        def config(**more: Any) -> dict[str, Any]:
            model = {"provider": "rules", "name": "rules", "rules": [rule]}
            return rules_config(model=model, connectors=[{**connector, **more}])

        async with runtime_client(config()) as client:
            body = (await client.post("/v1/sessions/s/messages", json=ask)).json()
        assert body["toolCalls"][0]["outcome"] == "tls_error"

        async with runtime_client(config(caFile=str(ca.write(tmp_path / "ca.crt")))) as client:
            body = (await client.post("/v1/sessions/s/messages", json=ask)).json()
        assert body["toolCalls"][0]["outcome"] == "success", body
        assert body["reply"] == "Order A-1001 is shipped."
    finally:
        proxy.close()
        server.stop()
