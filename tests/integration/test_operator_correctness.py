"""What a new user trying the operator found wrong (issue 12), each checked on the real local cluster:
prompt ConfigMaps that other tools label, the replicas hand-off to and from an HPA, intents given
more than once, the labels children carry, reachability of an external Redis, and the status columns."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

from tests.integration.operator_harness import OperatorProcess
from tests.integration.test_operator import apply, get, ready, rules_agent, wait_for

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def config_map(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data}


def system_prompt(kubectl: Kubectl, agent: dict[str, Any], namespace: str) -> str:
    name, revision = agent["metadata"]["name"], agent["status"]["revision"]["stable"]
    cm = get(kubectl, "configmap", f"{name}-config-{revision}", namespace)
    return json.loads(cm["data"]["config.json"])["systemPrompt"]


# 1. A prompt ConfigMap is the user's whatever tool labelled it ---------------------------------------------
def test_prompt_config_maps_labelled_by_other_tools_are_read_and_followed(
        operator: OperatorProcess, kubectl: Kubectl, namespace: str) -> None:
    # Helm sets managed-by on everything it installs; a user may even copy our own value by hand.
    # Neither makes the ConfigMap ours: only our owner reference does.
    labelled = {"helm": "Helm", "copied": "agentfleet"}
    for agent, value in labelled.items():
        apply(kubectl, namespace, config_map(f"prompts-{agent}", {"app.kubernetes.io/managed-by": value},
                                             support=f"You help ({agent})."),
              rules_agent(agent, prompt={"configMapRef": {"name": f"prompts-{agent}", "key": "support"}}))
    for agent in labelled:
        found = wait_for(f"{agent} Ready", lambda agent=agent: ready(kubectl, agent, namespace), timeout=60)
        assert system_prompt(kubectl, found, namespace) == f"You help ({agent})."
    # An edit of such a ConfigMap is a new revision, like any prompt change.
    for agent, value in labelled.items():
        apply(kubectl, namespace, config_map(f"prompts-{agent}", {"app.kubernetes.io/managed-by": value},
                                             support=f"You help ({agent}), politely."))
    for agent in labelled:
        edited = wait_for(f"{agent} new prompt", lambda agent=agent: (a := ready(kubectl, agent, namespace))
                          and system_prompt(kubectl, a, namespace).endswith("politely.") and a)
        assert edited["status"]["phase"] == "Ready"
