"""Traffic from inside the cluster: a client pod that calls an agent's Service and counts what came back.

The client is a plain pod (the runtime image, whose Python is all it needs) in the test's namespace,
so requests take the path a caller's take: cluster DNS, the Service's ClusterIP, kube-proxy's rules,
a pod on the bridge. Each request opens a new connection and is never retried, so a refused or
reset connection during a rollout is counted, not hidden. The pod prints one JSON line with the
counts by status code, by the `X-Agent-Revision` header and by error, then exits.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.integration.conftest import Kubectl

CLIENT = r"""
import http.client, json, os, sys, threading, time
from collections import Counter
host, port = os.environ["TARGET_HOST"], int(os.environ.get("TARGET_PORT", "8080"))
key, count = os.environ.get("API_KEY", ""), int(os.environ.get("COUNT", "0"))
until_rev, settle = os.environ.get("UNTIL_REVISION", ""), float(os.environ.get("SETTLE_SECONDS", "10"))
max_s, threads = float(os.environ.get("MAX_SECONDS", "240")), int(os.environ.get("THREADS", "2"))
pause = float(os.environ.get("PAUSE_SECONDS", "0.02"))
message = os.environ.get("MESSAGE", "hello")
body = json.dumps({"model": "m", "messages": [{"role": "user", "content": message}]})
lock, codes, revisions, errors, replies = threading.Lock(), Counter(), Counter(), Counter(), Counter()
state = {"sent": 0, "last_other": time.monotonic(), "stop": False}
start = time.monotonic()
def one():
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        try:
            reply = json.loads(data)["choices"][0]["message"]["content"][:160]
        except Exception:
            reply = ""
        return str(resp.status), resp.getheader("X-Agent-Revision") or "", None, reply
    except Exception as exc:
        return None, "", f"{type(exc).__name__}({getattr(exc, 'errno', None) or ''})", ""
    finally:
        conn.close()
def worker():
    while True:
        with lock:
            if state["stop"] or (count and state["sent"] >= count) or time.monotonic() - start > max_s:
                return
            state["sent"] += 1
        code, rev, err, reply = one()
        with lock:
            if err:
                errors[err] += 1
            else:
                codes[code] += 1
                revisions[rev] += 1
                replies[reply] += 1
            now = time.monotonic()
            # UNTIL_REVISION=changed: until only revisions other than the first one seen answer.
            if not err:
                state.setdefault("first", rev)
            wanted = not err and (rev != state["first"] if until_rev == "changed" else rev == until_rev)
            if until_rev and not wanted:
                state["last_other"] = now
            if until_rev and now - state["last_other"] >= settle:
                state["stop"] = True
        time.sleep(pause)
# The node's NetworkPolicy enforcer learns this pod's address a moment after it starts; until then
# the agent's ingress rule does not count it as a pod of its namespace. One answer first, uncounted.
ready_by = time.monotonic() + 60
while one()[2] and time.monotonic() < ready_by:
    time.sleep(0.5)
start = state["last_other"] = time.monotonic()
print("client started", flush=True)
pool = [threading.Thread(target=worker) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
print(json.dumps({"codes": codes, "revisions": revisions, "errors": errors, "replies": replies,
                  "seconds": round(time.monotonic() - start, 1)}), flush=True)
"""


@dataclass
class TrafficResult:
    codes: dict[str, int]
    revisions: dict[str, int]
    errors: dict[str, int]
    replies: dict[str, int]
    seconds: float
    total: int = field(init=False)

    def __post_init__(self) -> None:
        self.total = sum(self.codes.values()) + sum(self.errors.values())

    def failed(self) -> int:
        """Requests that did not get a 200: other codes and connection errors."""
        return self.total - self.codes.get("200", 0)


class TrafficClient:
    """start() the client pod, wait_started(), change something, then result() waits for its report.

    count: stop after that many requests; until_revision: stop once only that revision (or, with
    "changed", only revisions other than the first one answered) has answered for 10 s.
    """

    def __init__(
        self,
        kubectl: Kubectl,
        namespace: str,
        image: str,
        service: str,
        *,
        api_key: str = "",
        count: int = 0,
        until_revision: str = "",
        max_seconds: float = 240,
        threads: int = 2,
        pause_seconds: float = 0.02,
        message: str = "hello",
    ) -> None:
        self.kubectl, self.namespace = kubectl, namespace
        self.name = f"traffic-{uuid.uuid4().hex[:6]}"
        env = {
            "TARGET_HOST": f"{service}.{namespace}.svc.cluster.local",
            "API_KEY": api_key,
            "COUNT": str(count),
            "UNTIL_REVISION": until_revision,
            "MAX_SECONDS": str(max_seconds),
            "THREADS": str(threads),
            "PAUSE_SECONDS": str(pause_seconds),
            "MESSAGE": message,
        }
        self.pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": namespace, "labels": {"app": "traffic"}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "client",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-c", CLIENT],
                        "env": [{"name": k, "value": v} for k, v in env.items()],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        }

    def start(self) -> TrafficClient:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(self.pod), check=True)
        return self

    def wait_started(self, timeout: float = 120) -> TrafficClient:
        wait_for(lambda: "client started" in self.logs(), timeout, f"traffic pod {self.name} to start")
        return self

    def logs(self) -> str:
        return self.kubectl("logs", self.name, "-n", self.namespace).stdout

    def result(self, timeout: float = 300) -> TrafficResult:
        def finished() -> bool:
            phase = self.kubectl("get", "pod", self.name, "-n", self.namespace, "-o", "jsonpath={.status.phase}").stdout
            assert phase != "Failed", f"traffic pod failed:\n{self.logs()}"
            return phase == "Succeeded"

        wait_for(finished, timeout, f"traffic pod {self.name} to finish")
        report = json.loads(self.logs().strip().splitlines()[-1])
        return TrafficResult(
            report["codes"], report["revisions"], report["errors"], report["replies"], report["seconds"]
        )

    def run(self, timeout: float = 300) -> TrafficResult:
        return self.start().result(timeout)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    return json.loads(kubectl("get", *args, "-o", "json", check=True).stdout)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def access_key(kubectl: Kubectl, namespace: str, agent: str) -> str:
    import base64

    secret = get_json(kubectl, "secret", f"{agent}-access", "-n", namespace)
    return base64.b64decode(secret["data"]["apiKey"]).decode()


def rules_agent(name: str, namespace: str, reply: str = "hi from a real pod", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "agentfleet.dev/v1alpha1",
        "kind": "Agent",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"provider": "rules", "name": "greeter", "rules": [{"pattern": ".*", "reply": reply}]},
            "prompt": {"system": "You greet people."},
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            **spec,
        },
    }


@contextmanager
def restricted_namespace(kubectl: Kubectl, name: str) -> Iterator[str]:
    """A namespace enforcing restricted Pod Security, deleted (and waited for) afterwards: waiting
    keeps the node's two cores for the next test instead of tearing pods down under it."""
    doc = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(doc), check=True)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=true", "--timeout=120s", "--ignore-not-found", timeout=180)


def apply(kubectl: Kubectl, doc: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc), check=True)


def wait_ready(kubectl: Kubectl, namespace: str, name: str, timeout: float = 180) -> dict[str, Any]:
    """The Agent once Ready at its current generation; on timeout the error shows its status and pods."""

    def ready() -> dict[str, Any] | None:
        agent = get_json(kubectl, "agent", name, "-n", namespace)
        generation_seen = agent.get("status", {}).get("observedGeneration") == agent["metadata"]["generation"]
        return agent if generation_seen and condition(agent, "Ready").get("status") == "True" else None

    try:
        return wait_for(ready, timeout, f"Agent {namespace}/{name} Ready")
    except AssertionError:
        pods = kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout
        status = json.dumps(get_json(kubectl, "agent", name, "-n", namespace).get("status"), indent=1)
        raise AssertionError(f"Agent {name} not Ready within {timeout}s\nstatus: {status}\npods:\n{pods}") from None


def running_revisions(kubectl: Kubectl, namespace: str, agent: str) -> set[str]:
    """Revisions of the Agent's pods that run and are not being deleted."""
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"agentfleet.dev/agent={agent}")["items"]
    return {
        p["metadata"]["labels"]["agentfleet.dev/revision"]
        for p in pods
        if p["status"].get("phase") == "Running" and p["metadata"].get("deletionTimestamp") is None
    }


def present_revisions(kubectl: Kubectl, namespace: str, agent: str) -> set[str]:
    """Revisions of every pod of the Agent that still exists, draining ones included.

    A pod being deleted keeps answering through its preStop drain while kube-proxy catches up
    (that is what the drain is for), so "only the new revision answers" holds once the old pods
    are gone, not once they are marked for deletion."""
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", f"agentfleet.dev/agent={agent}")["items"]
    return {p["metadata"]["labels"]["agentfleet.dev/revision"] for p in pods}
