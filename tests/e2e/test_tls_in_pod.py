"""An Agent serving HTTPS from the project's runtime image on the real node, and a certificate renewal
picked up in place while requests keep coming.

The certificate is made by the test's own CA for the Service names (`gate.<ns>.svc`); requests go from
this machine straight to the pod's address with that name as the TLS server name, the way a caller
through the Service would verify it. The renewal is what cert-manager does: the same Secret gets a new
pair. The kubelet rewrites the mounted files (no subPath, so it can), the runtime hands new handshakes
the new pair, and the pods, their restart counts and the Agent's revision stay as they were.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.e2e.traffic import access_key, apply, get_json, rules_agent, wait_for, wait_ready
from tests.fakes.tls import Issued, TestCA, peer_serial
from tests.integration.conftest import Kubectl

PORT = 8080


def _tls_secret(namespace: str, issued: Issued) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gate-tls", "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(issued.cert_pem).decode(),
            "tls.key": base64.b64encode(issued.key_pem).decode(),
        },
    }


def _pods(kubectl: Kubectl, ns: str) -> dict[str, tuple[str, int]]:
    """name -> (IP, restarts) of the Agent's running pods."""
    items = get_json(kubectl, "pods", "-n", ns, "-l", "agentfleet.dev/agent=gate")["items"]
    return {
        p["metadata"]["name"]: (p["status"]["podIP"], sum(c["restartCount"] for c in p["status"]["containerStatuses"]))
        for p in items
        if p["status"].get("phase") == "Running" and p["metadata"].get("deletionTimestamp") is None
    }


class Load:
    """Requests on new connections (each a new TLS handshake) to every pod until stopped."""

    def __init__(self, ips: list[str], server_name: str, trust: Any, key: str) -> None:
        self.ips, self.server_name, self.trust, self.key = ips, server_name, trust, key
        self.outcomes: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        turn = 0
        while not self._stop.is_set():
            ip = self.ips[turn % len(self.ips)]
            turn += 1
            try:
                with httpx.Client(verify=self.trust, timeout=10) as client:
                    response = client.post(
                        f"https://{ip}:{PORT}/v1/chat/completions",
                        json=body,
                        headers={"Authorization": f"Bearer {self.key}"},
                        extensions={"sni_hostname": self.server_name},
                    )
                self.outcomes[str(response.status_code)] += 1
            except httpx.HTTPError as exc:
                self.outcomes[type(exc).__name__] += 1
            time.sleep(0.05)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_https_from_the_runtime_image_and_a_renewal_under_load_restarts_nothing(
    kubectl: Kubectl, e2e_namespace: str, images: dict[str, str]
) -> None:
    ns = e2e_namespace
    name = f"gate.{ns}.svc"
    ca = TestCA()
    hosts = ("gate", name, f"{name}.cluster.local")
    first = ca.issue(hosts=hosts, common_name=name)
    apply(kubectl, _tls_secret(ns, first))
    apply(kubectl, rules_agent("gate", ns, replicas=2, access={"tls": {"secretRef": {"name": "gate-tls"}}}))
    agent = wait_ready(kubectl, ns, "gate")  # the readiness probes themselves speak HTTPS
    assert agent["status"]["endpoint"] == f"https://{name}:{PORT}"
    revision = agent["status"]["revision"]["stable"]
    before = _pods(kubectl, ns)
    assert len(before) == 2
    ips = sorted(ip for ip, _ in before.values())
    trust = ca.client_context()
    key = access_key(kubectl, ns, "gate")

    for ip in ips:
        assert peer_serial(ip, PORT, trust, server_name=name) == first.serial
        with httpx.Client(verify=trust, timeout=10) as client:
            reply = client.post(
                f"https://{ip}:{PORT}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
                headers={"Authorization": f"Bearer {key}"},
                extensions={"sni_hostname": name},
            )
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "hi from a real pod"
        with pytest.raises(httpx.TransportError):  # plain HTTP gets no answer from a TLS port
            httpx.get(f"http://{ip}:{PORT}/healthz", timeout=5)

    second = ca.issue(hosts=hosts, common_name=name)
    assert second.serial != first.serial
    with Load(ips, name, trust, key) as load:
        time.sleep(2)
        apply(kubectl, _tls_secret(ns, second))
        # The kubelet refreshes a Secret volume within its sync period (about a minute here).
        wait_for(
            lambda: all(peer_serial(ip, PORT, trust, server_name=name) == second.serial for ip in ips),
            240,
            "every pod serving the renewed certificate",
            interval=2,
        )
        time.sleep(2)
    assert load.outcomes["200"] > 20, load.outcomes
    assert set(load.outcomes) == {"200"}, f"requests failed during the renewal: {load.outcomes}"
    assert _pods(kubectl, ns) == before  # the same pods, not restarted
    assert get_json(kubectl, "agent", "gate", "-n", ns)["status"]["revision"]["stable"] == revision
