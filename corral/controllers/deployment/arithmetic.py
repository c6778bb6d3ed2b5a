"""The arithmetic of a RollingUpdate, pure (Kubernetes' rolling.go and
deployment_util.go): shared by the rollout step (rolling.py) and the
Deployment's sync (sync.py), which sizes the new ReplicaSet too.

    resolve_fenceposts(maxSurge, maxUnavailable, replicas)   surge rounds up,
        unavailable rounds down; both 0 → unavailable 1 (else no progress)
    new_rs_target(...)        how far the new RS may grow now
    cleanup_unhealthy(...)    old RSes first lose pods that are not available
    scale_down_old(...)       then old RSes lose available pods, oldest RS first,
                              while availability stays above the floor
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from corral.intstr import scaled_value


@dataclass(frozen=True)
class RSView:
    """What the arithmetic needs of a ReplicaSet."""
    name: str
    replicas: int  # spec.replicas
    available: int  # status.availableReplicas


def resolve_fenceposts(max_surge: int | str, max_unavailable: int | str,
                       replicas: int) -> tuple[int, int]:
    surge = scaled_value(max_surge, replicas, round_up=True)
    unavailable = scaled_value(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def new_rs_target(replicas: int, max_surge: int, all_rs: list[RSView], new: RSView) -> int:
    """The new ReplicaSet's size this step (Kubernetes' NewRSNewReplicas)."""
    current = sum(rs.replicas for rs in all_rs)
    max_total = replicas + max_surge
    if current >= max_total:
        return new.replicas
    return new.replicas + max(min(max_total - current, replicas - new.replicas), 0)


def max_scaled_down(replicas: int, max_unavailable: int, all_rs: list[RSView],
                    new: RSView | None) -> int:
    """How many old pods may go now without breaking the availability floor."""
    min_available = replicas - max_unavailable
    new_unavailable = (new.replicas - new.available) if new is not None else 0
    return sum(rs.replicas for rs in all_rs) - min_available - new_unavailable


def cleanup_unhealthy(old: list[RSView], limit: int) -> list[RSView]:
    """Old RSes (oldest first) shed their unavailable pods, at most ``limit`` in all."""
    result, removed = [], 0
    for rs in old:
        if removed >= limit or rs.replicas == 0 or rs.replicas <= rs.available:
            result.append(rs)
            continue
        down = min(limit - removed, rs.replicas - rs.available)
        removed += down
        result.append(replace(rs, replicas=rs.replicas - down))
    return result


def scale_down_old(old: list[RSView], all_available: int, replicas: int,
                   max_unavailable: int) -> list[RSView]:
    """Old RSes (oldest first) shed available pods down to the floor."""
    min_available = replicas - max_unavailable
    budget = all_available - min_available
    result = []
    for rs in old:
        if budget <= 0 or rs.replicas == 0:
            result.append(rs)
            continue
        down = min(rs.replicas, budget)
        budget -= down
        result.append(replace(rs, replicas=rs.replicas - down))
    return result


def plan_old(replicas: int, max_unavailable: int, old: list[RSView],
             new: RSView | None) -> list[RSView]:
    """The old RSes' sizes after this step (unchanged when nothing may go)."""
    if sum(rs.replicas for rs in old) == 0:
        return old
    all_rs = [*old, *([new] if new is not None else [])]
    limit = max_scaled_down(replicas, max_unavailable, all_rs, new)
    if limit <= 0:
        return old
    cleaned = cleanup_unhealthy(old, limit)
    # Pods shed as unhealthy were not available, so availability is unchanged.
    available = sum(rs.available for rs in cleaned) + (new.available if new else 0)
    return scale_down_old(cleaned, available, replicas, max_unavailable)
