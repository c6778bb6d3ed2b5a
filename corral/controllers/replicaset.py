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

import asyncio
import copy
import logging
from datetime import UTC, datetime

from corral.api.errors import APIError, Conflict, NotFound
from corral.client.events import NORMAL, WARNING, EventRecorder
from corral.client.http import Client, ServerUnreachable
from corral.controllers.base import Controller, OwnedPodEvents, split_key
from corral.controllers.expectations import Expectations
from corral.controllers.informers import NAMESPACE, SharedInformers
from corral.controllers.owners import claim
from corral.controllers.pods import (
    is_active,
    is_available,
    is_ready,
    pod_from_template,
    rank_for_deletion,
    seconds_until_available,
)
from corral.objects import Obj, is_deleting, meta, spec, uid_of

log = logging.getLogger("corral.controllers.replicaset")

BURST_REPLICAS = 500  # Kubernetes' burstReplicas: most pods created or deleted per sync


def slow_start_batches(total: int, initial: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, ... summing to ``total``: a template that cannot
    be created fails after one call, not ``total``."""
    batches, size, left = [], max(initial, 1), total
    while left > 0:
        batch = min(size, left)
        batches.append(batch)
        left -= batch
        size *= 2
    return batches


async def create_pods(client: Client, pods: list[Obj]) -> tuple[int, APIError | None]:
    """Create pods in slow-start batches; stop at the first failing batch.
    Returns (created, the error that stopped it)."""
    created, index = 0, 0
    for size in slow_start_batches(len(pods)):
        batch = pods[index:index + size]
        index += size
        results = await asyncio.gather(*(client.create(p) for p in batch),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        created += len(batch) - len(errors)
        if errors:
            err = errors[0]
            if isinstance(err, (APIError, ServerUnreachable)):
                return created, err if isinstance(err, APIError) else APIError(str(err))
            raise err
    return created, None


async def delete_pods(client: Client, expectations: Expectations, key: str,
                      pods: list[Obj]) -> tuple[list[Obj], BaseException | None]:
    """Delete pods (each on its uid, so a namesake is never hit), telling the
    owner's expectations. Returns the pods deleted and the first failure."""
    expectations.expect_deletions(key, [uid_of(p) for p in pods])
    results = await asyncio.gather(*(_delete_pod(client, p) for p in pods),
                                   return_exceptions=True)
    deleted, failure = [], None
    for pod, result in zip(pods, results, strict=True):
        if isinstance(result, BaseException):
            expectations.deletion_observed(key, uid_of(pod))  # never to be seen
            failure = failure or result
        else:
            deleted.append(pod)
    return deleted, failure


async def _delete_pod(client: Client, pod: Obj) -> None:
    m = meta(pod)
    try:
        await client.delete("Pod", m["name"], m.get("namespace"),
                            preconditions={"uid": str(m.get("uid"))})
    except NotFound:
        pass


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
        self.expectations.expect_creations(key, count)
        created, err = await create_pods(self.client, pods)
        for _ in range(count - created):
            self.expectations.creation_observed(key)  # those will never be seen
        if created:
            self.emit(rs, NORMAL, "SuccessfulCreate",
                      f"Created {created} pod{'s' if created > 1 else ''}")
        if err is not None:
            self.emit(rs, WARNING, "FailedCreate", f"Error creating: {err}")
            raise err

    async def _delete(self, key: str, rs: Obj, victims: list[Obj]) -> None:
        deleted, err = await delete_pods(self.client, self.expectations, key, victims)
        for pod in deleted:
            self.emit(rs, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta(pod)['name']}")
        if err is not None:
            raise err

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
