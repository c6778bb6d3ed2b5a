"""Builders for Node and Pod wire dicts and snapshots in scheduler tests."""

from __future__ import annotations

from typing import Any

from corral.scheduler.snapshot import ClusterSnapshot


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: int = 110,
         labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
         unschedulable: bool = False, ready: str = "True",
         extra: dict[str, str] | None = None) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": str(pods), **(extra or {})}
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {"allocatable": allocatable,
                   "conditions": [{"type": "Ready", "status": ready}]},
    }


def pod(name: str, cpu: str = "100m", memory: str = "128Mi", namespace: str = "default",
        labels: dict[str, str] | None = None, owner: str = "", priority: int | None = None,
        node_name: str = "", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                            "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet"}]
    body: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": {
        "cpu": cpu, "memory": memory}}}], **spec}
    if priority is not None:
        body["priority"] = priority
    if node_name:
        body["nodeName"] = node_name
    return {"metadata": meta, "spec": body}


def cluster(*nodes: dict[str, Any], pods: tuple[dict[str, Any], ...] = ()) -> ClusterSnapshot:
    snapshot = ClusterSnapshot()
    for n in nodes:
        snapshot.add_node(n)
    for p in pods:
        snapshot.add_pod(p)
    return snapshot
