"""Quota recalculation: status.used recounted from the objects that exist.

Admission charges quotas as objects are created and refunds them as they are
deleted (corral/api/admission/quota.py); this is the slow, sure path that heals
what that cannot see — pods that finished on another API server, charges for
creates that then failed. ``QuotaController`` (the manager's "resourcequota")
calls ``reconcile_quota`` for each ResourceQuota when it appears or its spec
changes, and again every ``SYNC_SECONDS`` (Kubernetes' resource-quota-sync-period).

A recount races creates that were charged but are not stored yet; the
compare-and-swap on the quota only protects against charges that land while
it counts. Kubernetes' quota controller has the same window; the next admission
that would be refused recounts with the in-flight charges it knows.
"""

from __future__ import annotations

import logging
import os

from corral.api.admission.quota import formatted, hard_of, recount, resources_counted
from corral.api.errors import Conflict, NotFound
from corral.api.resources import Resource
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.informers import SharedInformers
from corral.objects import Obj, spec

log = logging.getLogger("corral.controllers.quota")

ATTEMPTS = 5
SYNC_SECONDS = 300.0  # Kubernetes' --resource-quota-sync-period default (5 min)


def sync_seconds_from_env() -> float:
    return float(os.environ.get("CORRAL_QUOTA_SYNC_PERIOD", str(SYNC_SECONDS)))


class QuotaController(Controller):
    name = "resourcequota-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, sync_seconds: float = SYNC_SECONDS) -> None:
        super().__init__(client, informers, recorder, workers=1)
        self.sync_seconds = sync_seconds
        self.quotas = informers.get("ResourceQuota")
        # Status writes (ours and admission's) are not a reason to recount.
        self.quotas.add_handler(self.enqueue, lambda old, new: self._changed(old, new))

    def _changed(self, old: Obj, new: Obj) -> None:
        if spec(old) != spec(new):
            self.enqueue(new)

    async def reconcile(self, key: str) -> None:
        if self.quotas.get_by_key(key) is None:
            return
        namespace, name = split_key(key)
        await reconcile_quota(self.client, namespace or "", name)
        self.requeue_after(key, self.sync_seconds)


async def reconcile_quota(client: Client, namespace: str, name: str) -> None:
    """Bring the quota's status (hard and used) in line with what exists."""
    for _ in range(ATTEMPTS):
        try:
            quota = await client.get("ResourceQuota", name, namespace)
        except NotFound:
            return
        objects: list[tuple[Resource, Obj]] = []
        for res in resources_counted(hard_of(quota)):
            page = await client.list_all(res, namespace)
            objects.extend((res, obj) for obj in page.items)
        status = dict(quota.get("status") or {})
        want = {"hard": dict(spec(quota).get("hard") or {}),
                "used": formatted(recount(quota, objects))}
        if status.get("hard") == want["hard"] and status.get("used") == want["used"]:
            return
        quota["status"] = {**status, **want}
        try:
            await client.update_status(quota)
            log.info("quota recounted quota=%s/%s used=%s", namespace, name, want["used"])
            return
        except Conflict:
            continue  # charged or refunded meanwhile: count again
