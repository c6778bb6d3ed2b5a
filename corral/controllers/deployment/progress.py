"""Deployment status and its conditions, exactly as `kubectl rollout status` reads them.

    Available    True  MinimumReplicasAvailable   available ≥ replicas - maxUnavailable
                 False MinimumReplicasUnavailable
    Progressing  True  NewReplicaSetCreated       a new RS was created
                 True  FoundNewReplicaSet         an existing RS matches the template
                 True  ReplicaSetUpdated          counts moved since the last look
                 True  NewReplicaSetAvailable     complete: every replica updated and available
                 False ProgressDeadlineExceeded   no progress for progressDeadlineSeconds
                 Unknown DeploymentPaused / DeploymentResumed

Pure functions; lastUpdateTime moves whenever a condition is set,
lastTransitionTime only when its status changes.
"""

from __future__ import annotations

from datetime import datetime

from corral.objects import Obj, meta, parse_time, rfc3339, spec, status

NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


def condition(conditions: list[Obj], type_: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def set_condition(conditions: list[Obj], type_: str, status: str, reason: str, message: str,
                  now: datetime) -> list[Obj]:
    """The list with ``type_`` set: lastTransitionTime kept when the status stays;
    an identical status and reason keeps the old condition (lastUpdateTime too)
    unless the message changed."""
    old = condition(conditions, type_)
    stamp = rfc3339(now)
    if old is not None and old.get("status") == status and old.get("reason") == reason \
            and old.get("message") == message and reason != RS_UPDATED:
        return conditions
    new = {"type": type_, "status": status, "reason": reason, "message": message,
           "lastUpdateTime": stamp,
           "lastTransitionTime": old.get("lastTransitionTime", stamp)
           if old is not None and old.get("status") == status else stamp}
    return [c for c in conditions if c.get("type") != type_] + [new]


def remove_condition(conditions: list[Obj], type_: str) -> list[Obj]:
    return [c for c in conditions if c.get("type") != type_]


def _num(obj: Obj | None, field: str) -> int:
    return int(status(obj or {}).get(field) or 0)


def _spec_replicas(rs: Obj) -> int:
    return int(spec(rs).get("replicas") or 0)


def calculate_status(d: Obj, all_rs: list[Obj], new_rs: Obj | None, max_unavailable: int,
                     now: datetime) -> Obj:
    """Counts from the ReplicaSets, Available from the floor; Progressing kept."""
    old = d.get("status") or {}
    replicas = int(spec(d).get("replicas", 1))
    available = sum(_num(rs, "availableReplicas") for rs in all_rs)
    status: Obj = {
        "observedGeneration": int(meta(d).get("generation") or 1),
        "replicas": sum(_num(rs, "replicas") for rs in all_rs),
        "updatedReplicas": _num(new_rs, "replicas"),
        "readyReplicas": sum(_num(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(sum(_spec_replicas(rs) for rs in all_rs) - available, 0),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    conditions = list(old.get("conditions") or [])
    if available >= replicas - max_unavailable:
        conditions = set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                                   "Deployment has minimum availability.", now)
    else:
        conditions = set_condition(conditions, "Available", "False",
                                   "MinimumReplicasUnavailable",
                                   "Deployment does not have minimum availability.", now)
    status["conditions"] = conditions
    return status


def is_complete(d: Obj, status: Obj) -> bool:
    replicas = int(spec(d).get("replicas", 1))
    generation = int(meta(d).get("generation") or 1)
    return (int(status.get("updatedReplicas") or 0) == replicas
            and int(status.get("replicas") or 0) == replicas
            and int(status.get("availableReplicas") or 0) == replicas
            and int(status.get("observedGeneration") or 0) >= generation)


def is_progressing(old: Obj, new: Obj) -> bool:
    def n(s: Obj, f: str) -> int:
        return int(s.get(f) or 0)

    old_pods = n(old, "replicas") - n(old, "updatedReplicas")
    new_pods = n(new, "replicas") - n(new, "updatedReplicas")
    return (n(new, "updatedReplicas") != n(old, "updatedReplicas")
            or n(new, "readyReplicas") > n(old, "readyReplicas")
            or n(new, "availableReplicas") > n(old, "availableReplicas")
            or old_pods > new_pods)


def deadline_left(d: Obj, status: Obj, now: datetime) -> float | None:
    """Seconds until the progress deadline passes (≤ 0: passed); None when no
    deadline applies (none set, complete, timed out already)."""
    deadline = spec(d).get("progressDeadlineSeconds")
    cond = condition(status.get("conditions") or [], "Progressing")
    if deadline is None or cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    updated = parse_time(cond.get("lastUpdateTime"))
    if updated is None:
        return None
    return float(deadline) - (now - updated).total_seconds()


def rollout_conditions(d: Obj, status: Obj, new_rs_name: str, now: datetime) -> list[Obj]:
    """The Progressing condition after this sync (Kubernetes' syncRolloutStatus)."""
    conditions = list(status.get("conditions") or [])
    spec = d.get("spec") or {}
    if spec.get("progressDeadlineSeconds") is None:
        return remove_condition(conditions, "Progressing")
    if spec.get("paused"):
        return conditions
    current = condition(conditions, "Progressing")
    already_complete = (current is not None and current.get("reason") == NEW_RS_AVAILABLE
                        and int(status.get("replicas") or 0)
                        == int(status.get("updatedReplicas") or 0))
    if already_complete:
        return conditions
    old = d.get("status") or {}
    if is_complete(d, status):
        return set_condition(conditions, "Progressing", "True", NEW_RS_AVAILABLE,
                             f'ReplicaSet "{new_rs_name}" has successfully progressed.', now)
    if is_progressing(old, status):
        return set_condition(conditions, "Progressing", "True", RS_UPDATED,
                             f'ReplicaSet "{new_rs_name}" is progressing.', now)
    left = deadline_left(d, {**status, "conditions": conditions}, now)
    if left is not None and left <= 0:
        return set_condition(conditions, "Progressing", "False", TIMED_OUT,
                             f'ReplicaSet "{new_rs_name}" has timed out progressing.', now)
    return conditions


def paused_conditions(d: Obj, now: datetime) -> list[Obj]:
    """Progressing Unknown while paused; DeploymentResumed once resumed."""
    conditions = list(status(d).get("conditions") or [])
    if spec(d).get("progressDeadlineSeconds") is None:
        return conditions
    current = condition(conditions, "Progressing")
    paused = bool(spec(d).get("paused"))
    was_paused = current is not None and current.get("reason") == PAUSED
    if paused and not was_paused:
        return set_condition(conditions, "Progressing", "Unknown", PAUSED,
                             "Deployment is paused", now)
    if not paused and was_paused:
        return set_condition(conditions, "Progressing", "Unknown", RESUMED,
                             "Deployment is resumed", now)
    return conditions
