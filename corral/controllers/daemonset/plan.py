"""What a DaemonSet should do, as pure functions of its nodes and pods
(Kubernetes' daemon controller: podsShouldBeOnNode, rollingUpdate, status).

    node_fit(template, node) ─► should_run (a new pod may go there: nodeSelector,
        required node affinity, NoSchedule and NoExecute taints tolerated) and
        should_continue (an existing pod may stay: only NoExecute taints count)
    plan(...) ─► nodes to create a pod on, pods to delete:
        a fitting node without a pod gets one; a pod on a node that no longer fits
        (or that is gone) is deleted; failed pods are replaced; duplicates deleted;
        RollingUpdate replaces old-template pods within maxUnavailable/maxSurge

Daemon pods tolerate the node condition taints and the cordon, as Kubernetes'
do, and carry a required node affinity to their node (matchFields metadata.name).
They are also bound at creation (spec.nodeName, as Kubernetes did before 1.12):
a daemon pod belongs on that node or nowhere, and binding directly also serves
nodes the scheduler would pass over (not Ready yet, registered without an agent);
the agent admits it like any bound pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from corral.controllers.history import REVISION_HASH
from corral.controllers.pods import is_available, is_ready, phase
from corral.intstr import scaled_value
from corral.objects import Obj, is_deleting, labels_of, meta, name_of, spec, status

# Kubernetes' AddOrUpdateDaemonPodTolerations.
DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
     "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


@dataclass(frozen=True)
class NodeFit:
    should_run: bool
    should_continue: bool


def daemon_tolerations(pod_spec: Obj) -> list[Obj]:
    own = list(pod_spec.get("tolerations") or [])
    return own + [t for t in DAEMON_TOLERATIONS if t not in own]


def with_node_affinity(pod_spec: Obj, node: str) -> Obj:
    """The pod's required node affinity replaced by "this node" (its preferred
    terms kept), and the daemon tolerations added."""
    affinity = dict(pod_spec.get("affinity") or {})
    node_affinity = dict(affinity.get("nodeAffinity") or {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
    affinity["nodeAffinity"] = node_affinity
    return {**pod_spec, "affinity": affinity, "tolerations": daemon_tolerations(pod_spec)}


def target_node(pod: Obj) -> str:
    """The node a daemon pod is for: its nodeName, or the one its affinity names."""
    node = spec(pod).get("nodeName")
    if node:
        return str(node)
    required = (((spec(pod).get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and f.get("values"):
                return str(f["values"][0])
    return ""


def _expression_matches(expr: Obj, values: dict[str, str]) -> bool:
    key, op, wanted = expr.get("key") or "", expr.get("operator"), expr.get("values") or []
    present, value = key in values, values.get(key)
    if op == "In":
        return present and value in wanted
    if op == "NotIn":
        return not present or value not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(str(value)), int(wanted[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _term_matches(term: Obj, labels: dict[str, str], node_name: str) -> bool:
    expressions, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches no node
    return (all(_expression_matches(e, labels) for e in expressions)
            and all(_expression_matches(f, {"metadata.name": node_name}) for f in fields))


def _tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("key") and t.get("key") != taint.get("key"):
            continue
        if t.get("operator") == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def node_fit(template: Obj, node: Obj) -> NodeFit:
    pod_spec = spec(template)
    labels, node_name = labels_of(node), name_of(node)
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return NodeFit(False, False)
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required and not any(_term_matches(t, labels, node_name)
                            for t in required.get("nodeSelectorTerms") or []):
        return NodeFit(False, False)
    tolerations = daemon_tolerations(pod_spec)
    taints = list(spec(node).get("taints") or [])
    untolerated = {t.get("effect") for t in taints if not _tolerates(tolerations, t)}
    if "NoExecute" in untolerated:
        return NodeFit(False, False)
    return NodeFit("NoSchedule" not in untolerated, True)


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)  # node names
    delete: list[Obj] = field(default_factory=list)  # pods


@dataclass(frozen=True)
class Rollout:
    on_delete: bool
    max_unavailable: int
    max_surge: int


def rollout_of(ds: Obj, desired: int) -> Rollout:
    strategy = spec(ds).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # Kubernetes: never wedge a rollout on two zeros
    return Rollout(strategy.get("type") == "OnDelete", unavailable, surge)


def _oldest_first(pods: list[Obj]) -> list[Obj]:
    return sorted(pods, key=lambda p: (str(meta(p).get("creationTimestamp") or ""),
                                       name_of(p)))


def plan(fits: dict[str, NodeFit], pods_by_node: dict[str, list[Obj]], update_hash: str,
         rollout: Rollout, min_ready: int, now: datetime) -> Plan:
    """The creations and deletions that bring the pods to one per fitting node,
    at the template ``update_hash`` as the rollout allows."""
    result = Plan()
    running: dict[str, list[Obj]] = {}
    for node in sorted(set(fits) | set(pods_by_node)):
        fit = fits.get(node, NodeFit(False, False))
        pods = pods_by_node.get(node, [])
        live = [p for p in pods if not is_deleting(p)]
        failed = [p for p in live if phase(p) == "Failed"]
        live = [p for p in live if phase(p) != "Failed"]
        if not fit.should_continue:
            result.delete.extend(live + failed)
            continue
        result.delete.extend(failed)
        if not live:
            if fit.should_run and not any(is_deleting(p) for p in pods):
                result.create.append(node)
            continue
        new = _oldest_first([p for p in live if labels_of(p).get(REVISION_HASH) == update_hash])
        old = _oldest_first([p for p in live if labels_of(p).get(REVISION_HASH) != update_hash])
        result.delete.extend(new[1:] + old[1:])  # duplicates: keep the oldest of each
        running[node] = new[:1] + old[:1]
    if not rollout.on_delete:
        _roll(result, running, update_hash, rollout, sum(f.should_run for f in fits.values()),
              min_ready, now)
    return result


def _roll(result: Plan, running: dict[str, list[Obj]], update_hash: str, rollout: Rollout,
          desired: int, min_ready: int, now: datetime) -> None:
    def available(pod: Obj) -> bool:
        return is_available(pod, min_ready, now)

    def is_new(pod: Obj) -> bool:
        return labels_of(pod).get(REVISION_HASH) == update_hash

    # Nodes that should have a pod but have no available one count as unavailable.
    unavailable = max(desired - len(running), 0) + sum(
        1 for pods in running.values() if not any(available(p) for p in pods))
    surging = sum(1 for pods in running.values() if len(pods) == 2)
    for node, pods in sorted(running.items()):
        old = next((p for p in pods if not is_new(p)), None)
        if old is None:
            continue
        new = next((p for p in pods if is_new(p)), None)
        if new is not None:  # a surge in progress: retire the old pod once the new serves
            if available(new) or not available(old):
                result.delete.append(old)
            continue
        if not available(old):
            result.delete.append(old)  # replacing an unavailable pod costs nothing
        elif rollout.max_surge > 0:
            if surging < rollout.max_surge:
                surging += 1
                result.create.append(node)
        elif unavailable < rollout.max_unavailable:
            unavailable += 1
            result.delete.append(old)


def daemon_status(ds: Obj, fits: dict[str, NodeFit], pods_by_node: dict[str, list[Obj]],
                  update_hash: str, now: datetime) -> Obj:
    """Kubernetes' updateDaemonSetStatus: counts over nodes, by each node's
    newest live pod."""
    min_ready = int(spec(ds).get("minReadySeconds") or 0)
    desired = current = ready = available = updated = misscheduled = 0
    for node in set(fits) | set(pods_by_node):
        live = [p for p in pods_by_node.get(node, []) if not is_deleting(p)]
        if not fits.get(node, NodeFit(False, False)).should_run:
            misscheduled += bool(live)
            continue
        desired += 1
        if not live:
            continue
        current += 1
        pod = _oldest_first(live)[-1]
        ready += is_ready(pod)
        available += is_available(pod, min_ready, now)
        updated += labels_of(pod).get(REVISION_HASH) == update_hash
    return {**status(ds),
            "desiredNumberScheduled": desired, "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled, "numberReady": ready,
            "numberAvailable": available, "numberUnavailable": desired - available,
            "updatedNumberScheduled": updated,
            "observedGeneration": int(meta(ds).get("generation") or 1)}
