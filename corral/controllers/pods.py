"""What controllers read off pods (active, ready, available), the order in
which a scale-down picks its victims, and a pod built from a template.

Scale-down victims first (Kubernetes' ActivePods ordering):
    unassigned < assigned;  Pending < Unknown < Running;  not ready < ready;
    ready for less time < ready longer;  more restarts < fewer;  newer < older
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from corral.controllers.owners import owner_reference
from corral.objects import Obj, is_deleting, meta, parse_time, spec, status

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def phase(pod: Obj) -> str:
    return str(status(pod).get("phase") or "Pending")


def is_finished(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """Counts toward a controller's replicas: not finished, not being deleted."""
    return not is_finished(pod) and not is_deleting(pod)


def ready_condition(pod: Obj) -> Obj | None:
    conditions = status(pod).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def is_ready(pod: Obj) -> bool:
    condition = ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def ready_since(pod: Obj) -> datetime | None:
    condition = ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return parse_time(condition.get("lastTransitionTime"))


def is_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least minReadySeconds."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: datetime) -> float | None:
    """How long until a ready pod becomes available (None: not ready, or already)."""
    since = ready_since(pod)
    if since is None or min_ready_seconds <= 0:
        return None
    left = min_ready_seconds - (now - since).total_seconds()
    return left if left > 0 else None


def restarts(pod: Obj) -> int:
    statuses = status(pod).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """Sort key: the pod to delete first sorts first."""
    since = ready_since(pod)
    created = parse_time(meta(pod).get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)
    return (
        bool(spec(pod).get("nodeName")),
        _PHASE_RANK.get(phase(pod), 0),
        is_ready(pod),
        -(since.timestamp()) if since is not None else 0.0,
        -restarts(pod),
        -created.timestamp(),
        str(meta(pod).get("name")),
    )


def rank_for_deletion(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=deletion_rank)


def pod_from_template(template: Obj, owner: Obj, namespace: str, *,
                      generate_name: str | None = None, name: str | None = None,
                      extra_labels: dict[str, str] | None = None,
                      extra_annotations: dict[str, str] | None = None,
                      finalizers: list[str] | None = None) -> Obj:
    """A Pod for ``owner`` from a pod template (the template is copied)."""
    tmeta = meta(template)
    labels = {**(tmeta.get("labels") or {}), **(extra_labels or {})}
    annotations = {**(tmeta.get("annotations") or {}), **(extra_annotations or {})}
    pod_meta: Obj = {"namespace": namespace, "labels": labels,
                     "ownerReferences": [owner_reference(owner)]}
    if name:
        pod_meta["name"] = name
    else:
        pod_meta["generateName"] = generate_name or f"{meta(owner).get('name')}-"
    if annotations:
        pod_meta["annotations"] = annotations
    if finalizers:
        pod_meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": copy.deepcopy(spec(template))}
