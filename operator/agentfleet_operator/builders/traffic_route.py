"""Exact canary weights on a Gateway API HTTPRoute the user owns: only the backendRefs that point at
this Agent's Services are rewritten, the rest of the route (matches, filters, parents) is left alone."""

from __future__ import annotations

from typing import Any

from . import names


def desired_backends(agent: str, canary_weight: int, has_canary: bool) -> list[dict[str, Any]]:
    stable = {
        "group": "",
        "kind": "Service",
        "name": names.stable(agent),
        "port": names.RUNTIME_PORT,
        "weight": 100 - canary_weight if has_canary else 100,
    }
    if not has_canary:
        return [stable]
    return [
        stable,
        {
            "group": "",
            "kind": "Service",
            "name": names.canary(agent),
            "port": names.RUNTIME_PORT,
            "weight": canary_weight,
        },
    ]


def _ours(ref: dict[str, Any], agent: str) -> bool:
    return ref.get("kind", "Service") == "Service" and ref.get("name") in (
        agent,
        names.stable(agent),
        names.canary(agent),
    )


def route_patch(route: dict[str, Any], agent: str, canary_weight: int, has_canary: bool) -> list[dict[str, Any]]:
    """JSON-patch operations that set the weights, or [] when the route already carries them."""
    ops: list[dict[str, Any]] = []
    want = desired_backends(agent, canary_weight, has_canary)
    for index, rule in enumerate(route.get("spec", {}).get("rules", []) or []):
        refs = rule.get("backendRefs") or []
        if not refs or not all(_ours(ref, agent) for ref in refs):
            continue  # a rule that also routes elsewhere is the user's to split
        current = [
            {
                k: ref.get(k, d)
                for k, d in (("group", ""), ("kind", "Service"), ("name", None), ("port", None), ("weight", 1))
            }
            for ref in refs
        ]
        if current != want:
            ops.append({"op": "replace", "path": f"/spec/rules/{index}/backendRefs", "value": want})
    return ops


def routed_rules(route: dict[str, Any], agent: str) -> int:
    return sum(
        1
        for rule in route.get("spec", {}).get("rules", []) or []
        if rule.get("backendRefs") and all(_ours(r, agent) for r in rule["backendRefs"])
    )
