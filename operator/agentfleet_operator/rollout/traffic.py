"""Canary weight as a replica ratio, for when no traffic router splits requests exactly.

Both tracks sit behind one Service, so each pod gets about the same share of requests: the
canary's share of traffic is its share of ready pods. The stable track keeps its full size during
a canary (abort is then instant), so the canary is sized against it.
"""

from __future__ import annotations


def replicas_for_weight(stable_replicas: int, weight: int) -> int:
    """Canary pods so that canary/(canary+stable) is about weight percent, rounded up.

    weight 0 -> 0; weight 100 -> as many as stable (the closest a ratio gets without shrinking
    stable); any weight > 0 gets at least one pod, or the canary would never see a request.
    """
    weight = min(100, max(0, weight))
    stable_replicas = max(0, stable_replicas)
    if weight == 0:
        return 0
    if weight == 100:
        return max(1, stable_replicas)
    # Integer ceiling of stable*w/(100-w): no float rounding at the boundaries.
    return max(1, -(-stable_replicas * weight // (100 - weight)))


def achieved_weight(stable_ready: int, canary_ready: int) -> int:
    """Percent of ready pods that are canary pods (rounded half up); 0 when nothing is ready."""
    stable_ready, canary_ready = max(0, stable_ready), max(0, canary_ready)
    total = stable_ready + canary_ready
    if total == 0:
        return 0
    return (200 * canary_ready + total) // (2 * total)
