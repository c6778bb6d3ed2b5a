"""The DaemonSet controller: one pod per fitting node.

    DS, Node, Pod or ControllerRevision event ─► key "ns/ds" ─► reconcile:
      revisions ─► the update revision (its hash labels new pods)
      pods of the namespace ─► claim ─► by target node
      expectations satisfied? ─► plan (plan.py) ─► create / delete
      status ─► written when it changed
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

from corral.api.errors import Conflict, NotFound
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, OwnedPodEvents, split_key
from corral.controllers.daemonset.plan import (
    NodeFit,
    daemon_status,
    node_fit,
    plan,
    rollout_of,
    target_node,
    with_node_affinity,
)
from corral.controllers.expectations import Expectations
from corral.controllers.history import (
    REVISION_HASH,
    sync_update_revision,
    template_hash,
    truncate_history,
)
from corral.controllers.informers import NAMESPACE, OWNER_UID, SharedInformers
from corral.controllers.owners import claim
from corral.controllers.podcontrol import create_owned, delete_owned
from corral.controllers.pods import pod_from_template, seconds_until_available
from corral.objects import Obj, is_deleting, labels_of, meta, name_of, namespace_of, spec, uid_of

log = logging.getLogger("corral.controllers.daemonset")

TEMPLATE_GENERATION = "pod-template-generation"


class DaemonSetController(Controller):
    name = "daemonset-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 2) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.expectations = Expectations()
        self.daemonsets = informers.get("DaemonSet")
        self.pods = informers.get("Pod")
        self.nodes = informers.get("Node")
        self.revisions = informers.get("ControllerRevision")
        self.pod_events = OwnedPodEvents(self, "DaemonSet", self.daemonsets, self.pods,
                                         self.expectations)
        self.daemonsets.add_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                    self.pod_events.owner_deleted)
        self.nodes.add_handler(self._node_changed, self._node_updated, self._node_changed)

    # -- events ------------------------------------------------------------------

    def _node_changed(self, node: Obj) -> None:
        self.enqueue_all(self.daemonsets)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if (labels_of(old), spec(old)) != (labels_of(new), spec(new)):
            self.enqueue_all(self.daemonsets)

    # -- reconcile -----------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        ds = self.daemonsets.get_by_key(key)
        if ds is None:
            self.expectations.forget(key)
            return
        namespace, _ = split_key(key)
        owned = await claim(self.client, self.pods.by_index(NAMESPACE, namespace or ""), ds)
        template = spec(ds).get("template") or {}
        fits: dict[str, NodeFit] = {name_of(n): node_fit(template, n) for n in self.nodes.list()}
        by_node: dict[str, list[Obj]] = {}
        for pod in owned:
            by_node.setdefault(target_node(pod), []).append(pod)
        update_hash = template_hash(template)
        now = datetime.now(UTC)
        if not is_deleting(ds):
            revisions = self.revisions.by_index(OWNER_UID, uid_of(ds))
            await sync_update_revision(self.client, ds, revisions)
            if self.expectations.satisfied(key):
                desired = sum(f.should_run for f in fits.values())
                todo = plan(fits, by_node, update_hash, rollout_of(ds, desired),
                            int(spec(ds).get("minReadySeconds") or 0), now)
                await self._delete(key, ds, todo.delete)
                await self._create(key, ds, todo.create, update_hash)
            live = {f"{name_of(ds)}-{labels_of(p).get(REVISION_HASH)}" for p in owned}
            await truncate_history(self.client, ds, revisions,
                                   live | {f"{name_of(ds)}-{update_hash}"})
        await self._write_status(key, ds, daemon_status(ds, fits, by_node, update_hash, now))
        min_ready = int(spec(ds).get("minReadySeconds") or 0)
        waits = [w for p in owned if (w := seconds_until_available(p, min_ready, now))]
        if waits:
            self.requeue_after(key, min(waits) + 0.05)

    async def _create(self, key: str, ds: Obj, nodes: list[str], update_hash: str) -> None:
        if not nodes:
            return
        template = spec(ds).get("template") or {}
        extra = {REVISION_HASH: update_hash,
                 TEMPLATE_GENERATION: str(meta(ds).get("generation") or 1)}
        pods = []
        for node in nodes:
            pod = pod_from_template(template, ds, namespace_of(ds), extra_labels=extra)
            pod["spec"] = {**with_node_affinity(pod["spec"], node), "nodeName": node}
            pods.append(pod)
        await create_owned(self, self.expectations, key, ds, pods)

    async def _delete(self, key: str, ds: Obj, victims: list[Obj]) -> None:
        await delete_owned(self, self.expectations, key, ds, victims)

    async def _write_status(self, key: str, ds: Obj, status: Obj) -> None:
        if status == (ds.get("status") or {}):
            return
        fresh = copy.deepcopy(ds)
        fresh["status"] = status
        try:
            await self.client.update_status(fresh)
        except NotFound:
            return
        except Conflict:
            self.enqueue_key(key)
