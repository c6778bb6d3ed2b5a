"""The namespace controller: a deleted namespace is emptied, then finalized.

    DELETE namespace ─► (API) phase Terminating, spec.finalizers ["kubernetes"]
    reconcile(name):
      delete every object of every namespaced kind in it, the CRDs' kinds too
      (Background; pods stop gracefully, the garbage collector and the
      controllers' finalizers do the rest)
      anything left ─► status.conditions say what and which finalizers hold it
               (NamespaceContentRemaining, NamespaceFinalizersRemaining, worded as
               Kubernetes words them), and look again in a second
      empty ─► PUT /api/v1/namespaces/{name}/finalize with spec.finalizers [] :
               the API server removes the namespace
"""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from dataclasses import dataclass, field

from corral.api.crd.definition import resources_of
from corral.api.errors import Conflict, NotFound
from corral.api.resources import BY_KIND, RESOURCES, Resource
from corral.client.events import EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller
from corral.controllers.informers import SharedInformers
from corral.objects import Obj, is_deleting, meta, now_rfc3339, spec, status

RECHECK_SECONDS = 1.0
# Events last: the deletions of everything else may still write some.
_ORDER = {"Event": 1}

# The conditions Kubernetes' namespace deleter keeps, each with its "all is well"
# reason and message (status False) for when it has nothing to report.
_OK = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered",
                                          "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted", ("All content successfully deleted, "
                                                          "may be waiting on finalization")),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers",
                                     "All content-preserving finalizers finished"),
}


@dataclass
class Remaining:
    """What a pass over the namespace left: objects per resource ("pods.",
    "deployments.apps") and objects per finalizer holding them."""

    listed: int = 0
    resources: Counter[str] = field(default_factory=Counter)
    finalizers: Counter[str] = field(default_factory=Counter)

    def add(self, res: Resource, obj: Obj) -> None:
        self.resources[f"{res.plural}.{res.group}"] += 1
        self.finalizers.update(meta(obj).get("finalizers") or [])


def deletion_conditions(remaining: Remaining, old: list[Obj], now: str) -> list[Obj]:
    """The namespace's conditions after a pass: Kubernetes' five, in its words."""
    found: dict[str, tuple[str, str]] = {}
    if remaining.resources:
        listed = ", ".join(sorted(f"{r} has {n} resource instances"
                                  for r, n in remaining.resources.items()))
        found["NamespaceContentRemaining"] = ("SomeResourcesRemain",
                                              f"Some resources are remaining: {listed}")
    if remaining.finalizers:
        listed = ", ".join(sorted(f"{f} in {n} resource instances"
                                  for f, n in remaining.finalizers.items()))
        found["NamespaceFinalizersRemaining"] = (
            "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {listed}")
    by_type = {c.get("type"): c for c in old}
    out = [c for c in old if c.get("type") not in _OK]
    for type_, ok in _OK.items():
        state = "True" if type_ in found else "False"
        reason, message = found.get(type_, ok)
        before = by_type.get(type_) or {}
        stamp = before.get("lastTransitionTime") if before.get("status") == state else now
        out.append({"type": type_, "status": state, "lastTransitionTime": stamp or now,
                    "reason": reason, "message": message})
    return out


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
        remaining = await self._delete_content(key)
        await self._report(ns, remaining)
        if remaining.listed:
            self.requeue_after(key, RECHECK_SECONDS)
            return
        await self._finalize(ns)

    async def _delete_content(self, namespace: str) -> Remaining:
        """Delete what is in the namespace; returns what it held and what an
        earlier pass could not remove (objects in their grace period or held by
        finalizers: the ones found already deleting)."""
        remaining = Remaining()
        kinds = sorted((r for r in (*RESOURCES, *await self._custom_kinds()) if r.namespaced),
                       key=lambda r: _ORDER.get(r.kind, 0))
        for res in kinds:
            page = await self.client.list_all(res, namespace)
            for obj in page.items:
                remaining.listed += 1
                if is_deleting(obj):
                    remaining.add(res, obj)
                    continue
                with contextlib.suppress(NotFound, Conflict):
                    await self.client.delete(res, str(meta(obj).get("name")), namespace,
                                             propagation_policy="Background")
        return remaining

    async def _report(self, ns: Obj, remaining: Remaining) -> None:
        """Say in status.conditions what keeps the namespace (`kubectl describe ns`
        shows them), writing only when that changed."""
        old = list(status(ns).get("conditions") or [])
        new = deletion_conditions(remaining, old, now_rfc3339())
        if new == old:
            return
        fresh = copy.deepcopy(ns)
        fresh.setdefault("status", {})["conditions"] = new
        with contextlib.suppress(NotFound, Conflict):
            await self.client.update_status(fresh)

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
