"""Informers over the kinds CustomResourceDefinitions define, started and stopped
as the CRDs come and go, for a controller that must see every kind (the garbage
collector: kube-controller-manager's watches every deletable resource it
discovers, custom ones included).

    CRD added/changed ─► its kind (the first served version: all versions share
                         the objects) ─► an Informer of its own, indexed like the
                         shared ones, handed to ``setup`` (handlers) and started
    CRD deleted       ─► the informer stops; the kind is remembered as removed:
                         deleting a CRD deletes all its objects, so an owner of
                         that kind is gone
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from corral.api.crd.definition import resources_of
from corral.api.resources import Resource
from corral.client.http import Client
from corral.client.informer import Informer, namespace_index
from corral.controllers.informers import NAMESPACE, OWNER_UID, UID, owner_uid_index, uid_index
from corral.objects import Obj, meta

log = logging.getLogger("corral.controllers")


class CustomKindInformers:
    def __init__(self, client: Client, crds: Informer, setup: Callable[[Informer], None], *,
                 retired: Callable[[Informer], None] | None = None,
                 resync_period: float | None = 30.0) -> None:
        """``setup`` is given each new informer before it starts; ``retired``
        each informer of a deleted CRD, with its last cache, before it stops."""
        self.client = client
        self.setup = setup
        self.retired = retired
        self.resync_period = resync_period
        self._by_crd: dict[str, Informer] = {}
        self._removed: set[tuple[str, str]] = set()  # (group, kind) of deleted CRDs
        crds.add_handler(self._changed, lambda old, new: self._changed(new), self._deleted)

    def informers(self) -> list[Informer]:
        return list(self._by_crd.values())

    def resource(self, group: str, kind: str) -> Resource | None:
        for informer in self._by_crd.values():
            if informer.resource.group == group and informer.resource.kind == kind:
                return informer.resource
        return None

    def removed(self, group: str, kind: str) -> bool:
        """Whether the CRD of this kind was deleted (and with it all its objects)."""
        return (group, kind) in self._removed and self.resource(group, kind) is None

    async def _changed(self, crd: Obj) -> None:
        served = resources_of(crd)
        name = str(meta(crd).get("name"))
        current = self._by_crd.get(name)
        if not served or (current is not None and _same(current.resource, served[0])):
            return
        if current is not None:
            await current.stop()
        res = served[0]
        self._removed.discard((res.group, res.kind))
        informer = Informer(self.client, res, resync_period=self.resync_period)
        informer.add_index(NAMESPACE, namespace_index)
        informer.add_index(OWNER_UID, owner_uid_index)
        informer.add_index(UID, uid_index)
        self.setup(informer)
        self._by_crd[name] = informer
        informer.start()
        log.info("custom kind watched kind=%s group=%s", res.kind, res.group)

    async def _deleted(self, crd: Obj) -> None:
        informer = self._by_crd.pop(str(meta(crd).get("name")), None)
        if informer is not None:
            self._removed.add((informer.resource.group, informer.resource.kind))
            if self.retired is not None:
                self.retired(informer)
            await informer.stop()

    async def stop(self) -> None:
        informers, self._by_crd = list(self._by_crd.values()), {}
        for informer in informers:
            await informer.stop()


def _same(a: Resource, b: Resource) -> bool:
    return (a.group, a.version, a.kind, a.plural, a.namespaced) == \
        (b.group, b.version, b.kind, b.plural, b.namespaced)
