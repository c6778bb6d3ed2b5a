"""The disruption controller: each PodDisruptionBudget's status, from its pods,
as Kubernetes' disruption controller computes it. pods/eviction (in the API)
reads that status and charges it; this controller is the one that gives back.

    PDB / Pod / ReplicaSet / Deployment event ─► key "ns/pdb" ─► reconcile:
      pods   = the namespace's pods its selector matches
      expected, desired healthy:
        minAvailable: N      → expected = len(pods), desired = N
        minAvailable: "P%"   → expected = the pods' controllers' replicas,
                               desired = ceil(P% of expected)
        maxUnavailable: N|P% → expected = the controllers' replicas,
                               desired = expected - N (or ceil(P%))
        a pod without a scalable controller (ReplicaSet, Deployment) → fail safe:
          nothing may be disrupted, Event NoControllers
      healthy  = Ready pods not being deleted and not disrupted in the last 2 min
      allowed  = max(healthy - desired, 0);  DisruptionAllowed condition
      disruptedPods keeps a pod until it is gone or its 2 minutes are up (then
      the budget is recomputed without it: the eviction never happened)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta

from corral.api.errors import NotFound
from corral.api.selectors import from_label_selector_object
from corral.client.clock import Clock, RealClock
from corral.client.events import WARNING, EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.controllers.owners import controller_ref
from corral.controllers.pods import is_ready
from corral.intstr import scaled_value
from corral.objects import (
    Obj,
    is_deleting,
    labels_of,
    meta,
    namespace_of,
    parse_time,
    rfc3339,
    spec,
    status,
)

DELETION_TIMEOUT = timedelta(minutes=2)  # Kubernetes' DeletionTimeout for disruptedPods


class NoControllers(Exception):
    """A selected pod has no controller whose scale says how many pods to expect."""


@dataclass(frozen=True)
class Budget:
    """A computed PDB status and when to look again (a disruptedPods entry expiring)."""

    status: Obj
    recheck: datetime | None


def expected_and_desired(spec: Obj, pods: list[Obj], scale_of: dict[str, int]) -> tuple[int, int]:
    """(expectedPods, desiredHealthy); ``scale_of`` maps a pod's controller uid to
    its desired replicas. Raises NoControllers when the rule needs scales."""
    min_available = spec.get("minAvailable")
    if isinstance(min_available, int):
        return len(pods), min_available
    expected = _expected_scale(pods, scale_of)
    if min_available is not None:
        return expected, scaled_value(min_available, expected, round_up=True)
    max_unavailable = spec.get("maxUnavailable")
    if max_unavailable is None:
        return expected, expected
    return expected, max(expected - scaled_value(max_unavailable, expected, round_up=True), 0)


def _expected_scale(pods: list[Obj], scale_of: dict[str, int]) -> int:
    counted: dict[str, int] = {}
    for pod in pods:
        ref = controller_ref(pod)
        uid = str(ref.get("uid")) if ref else ""
        if uid not in scale_of:
            raise NoControllers(f"found no controllers for pod {meta(pod).get('name')!r}")
        counted[uid] = scale_of[uid]
    return sum(counted.values())


def compute(pdb: Obj, pods: list[Obj], scale_of: dict[str, int], now: datetime) -> Budget:
    """The status a PDB should have (pure: tested from tables)."""
    spec, old = pdb.get("spec") or {}, status(pdb)
    disrupted, recheck = _live_disruptions(old.get("disruptedPods") or {}, pods, now)
    try:
        expected, desired = expected_and_desired(spec, pods, scale_of)
    except NoControllers:
        return Budget(_status(pdb, 0, 0, 0, 0, disrupted, "SyncFailed"), recheck)
    healthy = sum(1 for p in pods
                  if is_ready(p) and not is_deleting(p) and meta(p).get("name") not in disrupted)
    allowed = max(healthy - desired, 0)
    reason = "SufficientPods" if allowed > 0 else "InsufficientPods"
    return Budget(_status(pdb, expected, desired, healthy, allowed, disrupted, reason), recheck)


def _live_disruptions(entries: dict[str, str], pods: list[Obj],
                      now: datetime) -> tuple[dict[str, str], datetime | None]:
    """disruptedPods entries still pending: the pod exists, is not yet being deleted
    and its eviction is under two minutes old."""
    present = {meta(p).get("name"): p for p in pods}
    kept: dict[str, str] = {}
    recheck: datetime | None = None
    for name, stamp in entries.items():
        pod = present.get(name)
        when = parse_time(stamp)
        if pod is None or is_deleting(pod) or when is None:
            continue
        expiry = when + DELETION_TIMEOUT
        if expiry <= now:
            continue
        kept[name] = stamp
        recheck = expiry if recheck is None else min(recheck, expiry)
    return kept, recheck


def _status(pdb: Obj, expected: int, desired: int, healthy: int, allowed: int,
            disrupted: dict[str, str], reason: str) -> Obj:
    old = pdb.get("status") or {}
    allowed_now = "True" if allowed > 0 else "False"
    previous = next((c for c in old.get("conditions") or []
                     if c.get("type") == "DisruptionAllowed"), None)
    generation = meta(pdb).get("generation")
    condition = {"type": "DisruptionAllowed", "status": allowed_now, "reason": reason,
                 "message": "", "observedGeneration": generation,
                 "lastTransitionTime": (previous or {}).get("lastTransitionTime")}
    if previous is None or previous.get("status") != allowed_now \
            or previous.get("reason") != reason:
        condition["lastTransitionTime"] = None  # stamped by the controller on write
    status: Obj = {"observedGeneration": generation, "disruptionsAllowed": allowed,
                   "currentHealthy": healthy, "desiredHealthy": desired,
                   "expectedPods": expected, "conditions": [condition]}
    if disrupted:
        status["disruptedPods"] = disrupted
    return status


class DisruptionController(Controller):
    name = "disruption"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, clock: Clock | None = None) -> None:
        super().__init__(client, informers, recorder)
        self.clock = clock or RealClock()
        self.pdbs = informers.get("PodDisruptionBudget")
        self.pods = informers.get("Pod")
        self.replicasets = informers.get("ReplicaSet")
        self.deployments = informers.get("Deployment")
        self.pdbs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        for informer in (self.pods, self.replicasets, self.deployments):
            informer.add_handler(self._namespace_changed,
                                 lambda old, new: self._namespace_changed(new),
                                 self._namespace_changed)

    def _namespace_changed(self, obj: Obj) -> None:
        for pdb in self.pdbs.by_index(NAMESPACE, namespace_of(obj)):
            self.enqueue(pdb)

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        pdb = self.pdbs.get(namespace, name)
        if pdb is None:
            return
        pods = self._selected_pods(pdb)
        now = self.clock.now()
        budget = compute(pdb, pods, self._scales(namespace or ""), now)
        if budget.status["conditions"][0].get("reason") == "SyncFailed":
            self.emit(pdb, WARNING, "NoControllers",
                      "found no controllers for some of the pods this budget selects")
        await self._write(pdb, budget.status, now)
        if budget.recheck is not None:
            self.requeue_after(key, (budget.recheck - now).total_seconds() + 0.1)

    def _selected_pods(self, pdb: Obj) -> list[Obj]:
        try:
            selector = from_label_selector_object(spec(pdb).get("selector"))
        except ValueError:
            return []
        return [p for p in self.pods.by_index(NAMESPACE, namespace_of(pdb))
                if selector.matches(labels_of(p))]

    def _scales(self, namespace: str) -> dict[str, int]:
        """Desired replicas by controller uid: a ReplicaSet a Deployment owns answers
        with the Deployment's replicas (the rollout's total), as Kubernetes does."""
        deployments = {meta(d).get("uid"): d for d in self.deployments.by_index(NAMESPACE,
                                                                                namespace)}
        scales: dict[str, int] = {}
        for rs in self.replicasets.by_index(NAMESPACE, namespace):
            owner = controller_ref(rs)
            source = deployments.get(owner.get("uid")) if owner else None
            replicas = spec(source or rs).get("replicas")
            scales[str(meta(rs).get("uid"))] = 1 if replicas is None else int(replicas)
        return scales

    async def _write(self, pdb: Obj, status: Obj, now: datetime) -> None:
        old = pdb.get("status") or {}
        condition = status["conditions"][0]
        if condition["lastTransitionTime"] is None:
            condition["lastTransitionTime"] = rfc3339(now)
        if old == status:
            return
        updated = copy.deepcopy(pdb)
        updated["status"] = status
        try:
            await self.client.update_status(updated)
        except NotFound:
            return
