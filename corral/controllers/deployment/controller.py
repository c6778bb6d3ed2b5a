"""The Deployment controller: a ReplicaSet per pod template, rolled per strategy.

    Deployment / ReplicaSet event ─► key "ns/name" ─► reconcile:
      ReplicaSets of the namespace ─► claim (owned / adopt / release)
      being deleted        ─► status only
      paused               ─► Progressing Unknown, sizes only (sync_scale), cleanup
      a scaling event      ─► sync_scale (proportional)
      otherwise            ─► rolling.rollout_rolling | recreate.rollout_recreate
      then a requeue at the progress deadline, if one is pending
"""

from __future__ import annotations

import logging

from corral.client.events import WARNING, EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.deployment.recreate import rollout_recreate
from corral.controllers.deployment.rolling import rollout_rolling
from corral.controllers.deployment.sync import Rollout
from corral.controllers.informers import NAMESPACE, OWNER_UID, SharedInformers
from corral.controllers.owners import claim, controller_ref, selector_of
from corral.objects import Obj, is_deleting, meta, uid_of

log = logging.getLogger("corral.controllers.deployment")



class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 2) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.deployments = informers.get("Deployment")
        self.replicasets = informers.get("ReplicaSet")
        self.pods = informers.get("Pod")
        self.deployments.add_handler(self.enqueue, lambda old, new: self.enqueue(new),
                                     self.enqueue)
        self.replicasets.add_handler(self._rs_changed, lambda old, new: self._rs_updated(
            old, new), self._rs_changed)

    def _owner_key(self, rs: Obj) -> str | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        return f"{meta(rs).get('namespace')}/{ref.get('name')}"

    def _rs_changed(self, rs: Obj) -> None:
        key = self._owner_key(rs)
        if key is not None:
            self.enqueue_key(key)
        elif controller_ref(rs) is None:
            labels = meta(rs).get("labels") or {}
            for d in self.deployments.by_index(NAMESPACE, str(meta(rs).get("namespace"))):
                selector = selector_of(d)
                if selector is not None and selector.matches(labels):
                    self.enqueue(d)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        self._rs_changed(new)
        if self._owner_key(old) != self._owner_key(new):
            self._rs_changed(old)

    def _pods_of(self, rs: Obj) -> list[Obj]:
        return [p for p in self.pods.by_index(OWNER_UID, uid_of(rs))
                if (controller_ref(p) or {}).get("uid") == uid_of(rs)]

    async def reconcile(self, key: str) -> None:
        d = self.deployments.get_by_key(key)
        if d is None:
            return
        namespace, _ = split_key(key)
        if selector_of(d) is None:
            self.emit(d, WARNING, "SelectingAll",
                      "This deployment is selecting all pods. A non-empty selector is required.")
            return
        rses = await claim(self.client, self.replicasets.by_index(NAMESPACE, namespace or ""), d)
        rollout = Rollout(self.client, d, [rs for rs in rses if not is_deleting(rs)], self.emit,
                          self._pods_of)
        await self._sync(rollout)
        if rollout.requeue is not None:
            self.requeue_after(key, rollout.requeue)

    async def _sync(self, r: Rollout) -> None:
        if is_deleting(r.d):
            return await r.sync_status(rollout=False)
        await r.sync_paused_condition()
        if r.spec.get("paused"):
            await r.new_replica_set(create=False)
            await r.sync_scale()
            await r.cleanup()
            return await r.sync_status(rollout=False)
        if r.is_scaling_event():
            await r.new_replica_set(create=False)
            await r.sync_scale()
            return await r.sync_status(rollout=False)
        if (r.spec.get("strategy") or {}).get("type") == "Recreate":
            await rollout_recreate(r)
        else:
            await rollout_rolling(r)
