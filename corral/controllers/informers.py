"""Shared informers: one list+watch cache per kind for every controller, so the
manager holds one Pod cache, not one per controller.

    SharedInformers.get("Pod") ─► the same Informer each time (created on first use,
                                  indexed by namespace and by owner uid)
    start() ─► every informer lists and watches;  wait_synced() ─► caches complete
"""

from __future__ import annotations

import asyncio

from corral.client.http import Client
from corral.client.informer import Informer, namespace_index
from corral.objects import Obj, meta

NAMESPACE = "namespace"
OWNER_UID = "owner-uid"
UID = "uid"


def owner_uid_index(obj: Obj) -> list[str]:
    refs = meta(obj).get("ownerReferences") or []
    return [str(r["uid"]) for r in refs if r.get("uid")]


def uid_index(obj: Obj) -> list[str]:
    uid = meta(obj).get("uid")
    return [str(uid)] if uid else []


class SharedInformers:
    def __init__(self, client: Client, resync_period: float | None = 30.0) -> None:
        self.client = client
        self.resync_period = resync_period
        self._informers: dict[tuple[str, str | None], Informer] = {}
        self._started = False

    def get(self, kind: str, namespace: str | None = None) -> Informer:
        key = (kind, namespace)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, kind, namespace, resync_period=self.resync_period)
            informer.add_index(NAMESPACE, namespace_index)
            informer.add_index(OWNER_UID, owner_uid_index)
            informer.add_index(UID, uid_index)
            self._informers[key] = informer
            if self._started:
                informer.start()
        return informer

    def all(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(
            asyncio.gather(*(i.wait_synced() for i in self._informers.values())), timeout)

    @property
    def has_synced(self) -> bool:
        return all(i.has_synced for i in self._informers.values())

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
