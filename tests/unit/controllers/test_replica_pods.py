"""Which pods a scale-down deletes first, availability, and slow-start batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from corral.controllers.podcontrol import slow_start_batches
from corral.controllers.pods import (
    is_active,
    is_available,
    pod_from_template,
    rank_for_deletion,
    seconds_until_available,
)
from corral.controllers.replicaset import replica_status
from corral.objects import Obj, rfc3339

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def _t(seconds_ago: float) -> str:
    return rfc3339(NOW - timedelta(seconds=seconds_ago))


def pod(name: str, *, node: str | None = "n1", phase: str = "Running", ready_for: float | None = 60,
        restarts: int = 0, age: float = 100, deleting: bool = False) -> Obj:
    conditions = []
    if ready_for is not None:
        conditions.append({"type": "Ready", "status": "True",
                           "lastTransitionTime": _t(ready_for)})
    meta: Obj = {"name": name, "uid": name, "creationTimestamp": _t(age),
                 "labels": {"app": "x"}}
    if deleting:
        meta["deletionTimestamp"] = _t(0)
    return {"metadata": meta, "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def names(pods: list[Obj]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_unscheduled_before_pending_before_running() -> None:
    pods = [pod("running"), pod("pending", phase="Pending", ready_for=None),
            pod("unscheduled", node=None, phase="Pending", ready_for=None)]
    assert names(rank_for_deletion(pods)) == ["unscheduled", "pending", "running"]


def test_not_ready_before_ready_and_newer_ready_before_older() -> None:
    pods = [pod("old-ready", ready_for=500), pod("not-ready", ready_for=None),
            pod("new-ready", ready_for=5)]
    assert names(rank_for_deletion(pods)) == ["not-ready", "new-ready", "old-ready"]


def test_more_restarts_then_newer_first() -> None:
    pods = [pod("a", restarts=0, age=100, ready_for=50), pod("b", restarts=3, age=100,
                                                             ready_for=50),
            pod("c", restarts=0, age=10, ready_for=50)]
    assert names(rank_for_deletion(pods)) == ["b", "c", "a"]


def test_min_ready_seconds() -> None:
    p = pod("p", ready_for=3)
    assert is_available(p, 0, NOW)
    assert not is_available(p, 10, NOW)
    assert seconds_until_available(p, 10, NOW) == 7
    assert is_available(p, 3, NOW)


def test_active_excludes_finished_and_deleting() -> None:
    assert is_active(pod("a"))
    assert not is_active(pod("b", phase="Succeeded"))
    assert not is_active(pod("c", deleting=True))


def test_replica_status_counts() -> None:
    rs = {"metadata": {"generation": 4}, "spec": {"minReadySeconds": 10, "template": {
        "metadata": {"labels": {"app": "x"}}}}}
    pods = [pod("a", ready_for=60), pod("b", ready_for=1), pod("c", ready_for=None),
            pod("d", deleting=True)]
    status = replica_status(rs, pods, NOW)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 2,
                      "availableReplicas": 1, "terminatingReplicas": 1,
                      "observedGeneration": 4}


def test_slow_start_batches() -> None:
    assert slow_start_batches(0) == []
    assert slow_start_batches(1) == [1]
    assert slow_start_batches(10) == [1, 2, 4, 3]
    assert sum(slow_start_batches(500)) == 500


def test_pod_from_template_is_a_copy_with_a_controller_reference() -> None:
    template: Obj = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
             "metadata": {"name": "web-1", "uid": "u1"}}
    p = pod_from_template(template, owner, "ns")
    assert p["metadata"]["generateName"] == "web-1-"
    assert p["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u1",
        "controller": True, "blockOwnerDeletion": True}]
    p["spec"]["containers"][0]["name"] = "changed"
    assert template["spec"]["containers"][0]["name"] == "c"
