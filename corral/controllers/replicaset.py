"""The ReplicaSet controller: keep ``spec.replicas`` pods matching the selector.

    RS or Pod event ─► key "ns/rs" ─► reconcile:
      pods in the namespace ─► claim (owned / adopt orphans / release non-matching)
      expectations satisfied?  ─ no ─► only status (our last creates/deletes are
                                       not in the cache yet)
      active < replicas ─► create the difference in slow-start batches (1, 2, 4, ...)
      active > replicas ─► delete the lowest-ranked (pods.rank_for_deletion)
      status: replicas, fullyLabeled, ready, available (minReadySeconds), observedGeneration
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

from corral.api.errors import Conflict, NotFound
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, OwnedPodEvents, split_key
from corral.controllers.expectations import Expectations
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.controllers.owners import claim
from corral.controllers.podcontrol import create_owned, delete_owned
from corral.controllers.pods import (
    is_active,
    is_available,
    is_ready,
    pod_from_template,
    rank_for_deletion,
    seconds_until_available,
)
from corral.objects import Obj, is_deleting, meta, spec

log = logging.getLogger("corral.controllers.replicaset")

BURST_REPLICAS = 500  # Kubernetes' burstReplicas: most pods created or deleted per sync


def replica_status(rs: Obj, pods: list[Obj], now: datetime) -> Obj:
    spec = rs.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = meta(spec.get("template") or {}).get("labels") or {}
    active = [p for p in pods if is_active(p)]
    fully = [p for p in active
             if all((meta(p).get("labels") or {}).get(k) == v for k, v in template_labels.items())]
    status = dict(rs.get("status") or {})
    status.update({
        "replicas": len(active),
        "fullyLabeledReplicas": len(fully),
        "readyReplicas": sum(1 for p in active if is_ready(p)),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
        "terminatingReplicas": sum(1 for p in pods if is_deleting(p)),
        "observedGeneration": int(meta(rs).get("generation") or 1),
    })
    return status


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    kind = "ReplicaSet"  # what it keeps pods for (a subclass runs ReplicationControllers)

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 4) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.expectations = Expectations()
        self.replicasets = informers.get(self.kind)
        self.pods = informers.get("Pod")
        self.pod_events = OwnedPodEvents(self, self.kind, self.replicasets, self.pods,
                                         self.expectations)
        self.replicasets.add_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                     self.pod_events.owner_deleted)

    # -- reconcile -----------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        rs = self.replicasets.get_by_key(key)
        if rs is None:
            self.expectations.forget(key)
            return
        namespace, _ = split_key(key)
        candidates = self.pods.by_index(NAMESPACE, namespace or "")
        owned = await claim(self.client, [p for p in candidates], rs)
        active = [p for p in owned if is_active(p)]
        if self.expectations.satisfied(key) and not is_deleting(rs):
            await self._manage_replicas(key, rs, active)
        await self._write_status(key, rs, owned)

    async def _manage_replicas(self, key: str, rs: Obj, active: list[Obj]) -> None:
        want = int(spec(rs).get("replicas", 1))
        diff = want - len(active)
        if diff > 0:
            await self._create(key, rs, min(diff, BURST_REPLICAS))
        elif diff < 0:
            victims = rank_for_deletion(active)[:min(-diff, BURST_REPLICAS)]
            await self._delete(key, rs, victims)

    async def _create(self, key: str, rs: Obj, count: int) -> None:
        namespace = str(meta(rs).get("namespace"))
        template = spec(rs).get("template") or {}
        pods = [pod_from_template(template, rs, namespace) for _ in range(count)]
        await create_owned(self, self.expectations, key, rs, pods)

    async def _delete(self, key: str, rs: Obj, victims: list[Obj]) -> None:
        await delete_owned(self, self.expectations, key, rs, victims)

    async def _write_status(self, key: str, rs: Obj, owned: list[Obj]) -> None:
        now = datetime.now(UTC)
        status = replica_status(rs, owned, now)
        if status != (rs.get("status") or {}):
            fresh = copy.deepcopy(rs)
            fresh["status"] = status
            try:
                await self.client.update_status(fresh)
            except NotFound:
                return
            except Conflict:
                self.enqueue_key(key)  # the cache is behind: read again
                return
        min_ready = int(spec(rs).get("minReadySeconds") or 0)
        waits = [w for p in owned if is_active(p)
                 if (w := seconds_until_available(p, min_ready, now)) is not None]
        if waits:
            self.requeue_after(key, min(waits) + 0.05)


class ReplicationControllerController(ReplicaSetController):
    """Kubernetes' replication manager: the ReplicaSet logic for the older kind,
    whose selector is a label map (owners.selector_of reads both)."""

    name = "replicationcontroller-controller"
    kind = "ReplicationController"
