"""Quota recalculation: status.used recounted from the objects that exist.

Admission charges quotas as objects are created and refunds them as they are
deleted (corral/api/admission/quota.py); this is the slow, sure path that heals
what that cannot see — pods that finished on another API server, charges for
creates that then failed. The controller manager calls ``reconcile_quota`` for
each ResourceQuota (on its changes and periodically).

A recount races creates that were charged but are not stored yet; the
compare-and-swap on the quota only protects against charges that land while
it counts. Kubernetes' quota controller has the same window; the next admission
that would be refused recounts with the in-flight charges it knows.
"""

from __future__ import annotations

import logging

from corral.api.admission.quota import formatted, hard_of, recount, resources_counted
from corral.api.errors import Conflict, NotFound
from corral.api.resources import Resource
from corral.client.http import Client
from corral.objects import Obj, spec

log = logging.getLogger("corral.controllers.quota")

ATTEMPTS = 5


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
