"""A StatefulSet pod's data stays on a node: the agent keeps each claim's
directory where the pod ran (corral/agent/volumes.py), so a re-created pod
prefers that node, as a pod bound to a local PersistentVolume is steered to its
node in Kubernetes (here a preference, not a requirement: a node that is gone
must not strand the pod).

    bound pods with claims ─► {pod name: node}, kept in the StatefulSet's
                              annotation corral.dev/claim-nodes (the pod that
                              knew it is gone when its successor is created)
    a new pod with claims  ─► preferredDuringScheduling node affinity, weight 100,
                              matchFields metadata.name In [that node]
"""

from __future__ import annotations

import json
from typing import Any

from corral.objects import Obj, annotations_of, name_of, spec

CLAIM_NODES = "corral.dev/claim-nodes"
WEIGHT = 100
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def has_claims(sts: Obj) -> bool:
    return bool(spec(sts).get("volumeClaimTemplates"))


def recorded(sts: Obj) -> dict[str, str]:
    """The nodes holding each pod's claims, as last recorded (an unreadable
    annotation counts as none: it is rewritten from the pods)."""
    try:
        found = json.loads(annotations_of(sts).get(CLAIM_NODES) or "{}")
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): str(v) for k, v in found.items() if isinstance(v, str) and v}


def observed(sts: Obj, pods: list[Obj]) -> dict[str, str]:
    """The record brought up to date with where the set's pods are bound."""
    nodes = recorded(sts)
    if not has_claims(sts):
        return nodes
    for pod in pods:
        node = spec(pod).get("nodeName")
        if node:
            nodes[name_of(pod)] = str(node)
    return nodes


def annotation_patch(nodes: dict[str, str]) -> Obj:
    return {"metadata": {"annotations": {
        CLAIM_NODES: json.dumps(nodes, sort_keys=True, separators=(",", ":"))}}}


def prefer_node(pod: Obj, node: str) -> None:
    """Add a preference for ``node`` to the pod's node affinity (kept alongside
    what the template asks for)."""
    pod_spec: dict[str, Any] = pod.setdefault("spec", {})
    affinity = pod_spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") or {}
    preferred = [*(node_affinity.get(PREFERRED) or []), {
        "weight": WEIGHT, "preference": {"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node]}]}}]
    pod_spec["affinity"] = {**affinity, "nodeAffinity": {**node_affinity, PREFERRED: preferred}}
