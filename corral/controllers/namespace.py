"""The namespace controller: a deleted namespace is emptied, then finalized.

    DELETE namespace ─► (API) phase Terminating, spec.finalizers ["kubernetes"]
    reconcile(name):
      delete every object of every namespaced kind in it, the CRDs' kinds too
      (Background; pods stop gracefully, the garbage collector and the
      controllers' finalizers do the rest)
      anything left ─► look again in a second
      empty ─► PUT /api/v1/namespaces/{name}/finalize with spec.finalizers [] :
               the API server removes the namespace
"""

from __future__ import annotations

import contextlib
import copy

from corral.api.crd.definition import resources_of
from corral.api.errors import Conflict, NotFound
from corral.api.resources import BY_KIND, RESOURCES, Resource
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller
from corral.controllers.informers import SharedInformers
from corral.objects import Obj, is_deleting, meta, spec

RECHECK_SECONDS = 1.0
# Events last: the deletions of everything else may still write some.
_ORDER = {"Event": 1}


class NamespaceController(Controller):
    name = "namespace-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, workers: int = 2) -> None:
        super().__init__(client, informers, recorder, workers=workers)
        self.namespaces = informers.get("Namespace")
        self.namespaces.add_handler(self.enqueue, lambda old, new: self.enqueue(new))

    async def reconcile(self, key: str) -> None:
        ns = self.namespaces.get_by_key(key)
        if ns is None or not is_deleting(ns):
            return
        if "kubernetes" not in (spec(ns).get("finalizers") or []):
            return
        left = await self._delete_content(key)
        if left:
            self.requeue_after(key, RECHECK_SECONDS)
            return
        await self._finalize(ns)

    async def _delete_content(self, namespace: str) -> int:
        """Delete what is in the namespace; returns how many objects remain."""
        left = 0
        kinds = sorted((r for r in (*RESOURCES, *await self._custom_kinds()) if r.namespaced),
                       key=lambda r: _ORDER.get(r.kind, 0))
        for res in kinds:
            page = await self.client.list_all(res, namespace)
            for obj in page.items:
                left += 1
                if is_deleting(obj):
                    continue
                with contextlib.suppress(NotFound, Conflict):
                    await self.client.delete(res, str(meta(obj).get("name")), namespace,
                                             propagation_policy="Background")
        return left

    async def _custom_kinds(self) -> list[Resource]:
        """The kinds the CRDs define (one served version each: they share storage)."""
        crds = await self.client.list_all(BY_KIND["CustomResourceDefinition"], None)
        return [served[0] for served in map(resources_of, crds.items) if served]

    async def _finalize(self, ns: Obj) -> None:
        fresh = copy.deepcopy(ns)
        fresh.setdefault("spec", {})["finalizers"] = []
        name = meta(ns)["name"]
        with contextlib.suppress(NotFound):
            await self.client.raw("PUT", f"/api/v1/namespaces/{name}/finalize", json_body=fresh)
