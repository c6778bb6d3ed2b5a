"""Keeps an API server's served table in step with the stored CRDs.

    write of a CRD here ──► on_written ──► served.define (at once, this master)
    any master's write  ──► store watch ──► served.define (every master)
    CRD deleted         ──► Terminating (its cleanup finalizer): every object
                            deleted as a user would (their finalizers run, the
                            kind stays served for that, creates are refused);
                            none left ──► finalizer dropped ──► CRD removed
                            ──► on_deleted ──► served.define(name, ())

The admission step gives a CRD its status (NamesAccepted, Established,
acceptedNames, storedVersions) on every write, so a CRD is Established as soon
as it is stored, as kubectl wait --for condition=established expects."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from corral.aiotasks import cancel_and_wait
from corral.api.crd.definition import names_in_use, resources_of, with_status
from corral.api.errors import APIError, Conflict, NotFound
from corral.api.registry.core import Registry
from corral.api.registry.delete import DeleteOptions, delete
from corral.api.registry.objects import load
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj, meta, spec, status
from corral.store.base import EventType
from corral.store.errors import Compacted, KeyNotFound, StoreError, WatcherTooSlow

log = logging.getLogger("corral.api.crd")
CLEANUP = "customresourcecleanup.apiextensions.k8s.io"  # kube-apiserver's finalizer name
CRD = BY_KIND["CustomResourceDefinition"]
_RETRY_SECONDS = 1.0  # after the store failed under the watch


class CrdServing:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._task: asyncio.Task[None] | None = None
        self._cleanups: dict[str, asyncio.Task[None]] = {}  # CRD name → its cleanup
        registry.on_written.append(self._written)
        registry.on_deleted.append(self._deleted)
        registry.admission.insert(0, self)

    async def start(self) -> None:
        """Serve the stored CRDs now, then follow their changes."""
        revision = await self._relist()
        self._task = asyncio.create_task(self._follow(revision), name="crd-serving")

    async def aclose(self) -> None:
        for task in self._cleanups.values():
            task.cancel()
        await asyncio.gather(*self._cleanups.values(), return_exceptions=True)
        self._cleanups.clear()
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    # ---- admission: the CRD's status --------------------------------------

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        if res is not CRD or op not in ("CREATE", "UPDATE"):
            return
        taken = names_in_use(self.registry.served.all(), spec(obj).get("group", ""))
        obj["status"] = with_status(obj, taken)["status"]
        if op == "CREATE":
            m = meta(obj)
            m["finalizers"] = [*(m.get("finalizers") or []), CLEANUP]

    # ---- this master's writes ---------------------------------------------

    async def _written(self, res: Resource, obj: Obj) -> None:
        if res is CRD:
            self.registry.served.define(meta(obj)["name"], _servable(obj))
            self._clean_if_terminating(obj)

    async def _deleted(self, res: Resource, obj: Obj) -> None:
        if res is not CRD:
            return
        self.registry.served.define(meta(obj)["name"], ())
        await self._remove_objects(obj)

    def _clean_if_terminating(self, crd: Obj) -> None:
        name = meta(crd)["name"]
        pending = CLEANUP in (meta(crd).get("finalizers") or [])
        if meta(crd).get("deletionTimestamp") and pending and name not in self._cleanups:
            task = asyncio.create_task(self._cleanup(crd), name=f"crd-cleanup-{name}")
            self._cleanups[name] = task
            task.add_done_callback(lambda _: self._cleanups.pop(name, None))

    async def _cleanup(self, crd: Obj) -> None:
        """Delete every object of a terminating CRD, wait until their finalizers
        let the last one go, then drop the CRD's own finalizer."""
        kinds = resources_of(crd)
        name = meta(crd)["name"]
        try:
            if kinds:
                await self._delete_all(kinds[0])
            current = await self.registry.find(CRD, None, name)
            if current is not None:
                m = meta(current)
                m["finalizers"] = [f for f in m.get("finalizers") or [] if f != CLEANUP]
                await self.registry.update(CRD, None, name, current)
        except (APIError, StoreError) as err:  # the next write or restart tries again
            log.warning("CRD cleanup stopped crd=%s error=%s", name, err)

    async def _delete_all(self, res: Resource) -> None:
        store, prefix = self.registry.store, res.storage_prefix()
        listed = await store.list(prefix)
        for kv in listed.items:
            m = meta(load(kv))
            with contextlib.suppress(NotFound, Conflict):
                await delete(self.registry, res, m.get("namespace"), m["name"], DeleteOptions())
        if not (await store.list(prefix, limit=1)).items:
            return
        async for _ in store.watch(prefix, listed.revision):  # finalizers being released
            if not (await store.list(prefix, limit=1)).items:
                return

    async def _remove_objects(self, crd: Obj) -> None:
        """Delete every object of a deleted CRD (kube-apiserver's
        customresourcecleanup): watchers of the kind see each one DELETED."""
        live = {**crd, "metadata": {k: v for k, v in meta(crd).items()
                                    if k != "deletionTimestamp"}}
        kinds = resources_of(live)
        if not kinds:
            return
        store = self.registry.store
        listed = await store.list(kinds[0].storage_prefix())
        for kv in listed.items:
            with contextlib.suppress(KeyNotFound):
                await store.delete(kv.key)

    # ---- every master: the store's watch ----------------------------------

    async def _relist(self) -> int:
        listed = await self.registry.store.list(CRD.storage_prefix())
        stored = {meta(crd)["name"]: crd for crd in (load(kv) for kv in listed.items)}
        served = self.registry.served
        for name in served.custom_names() - set(stored):
            served.define(name, ())
        for name, crd in stored.items():
            served.define(name, _servable(crd))
            self._clean_if_terminating(crd)  # a cleanup a stopped master left
        return listed.revision

    async def _follow(self, revision: int) -> None:
        while True:
            try:
                async for event in self.registry.store.watch(CRD.storage_prefix(), revision):
                    revision = event.revision
                    crd = load(event.kv)
                    name = meta(crd)["name"]
                    gone = event.type is EventType.DELETE
                    self.registry.served.define(name, () if gone else _servable(crd))
            except (Compacted, WatcherTooSlow):
                revision = await self._relist()
            except StoreError as err:
                log.warning("CRD watch failed, retrying error=%s", err)
                await asyncio.sleep(_RETRY_SECONDS)


def _servable(crd: Obj) -> tuple[Resource, ...]:
    """Only an Established CRD is served (a name clash keeps it unserved)."""
    conditions = status(crd).get("conditions") or []
    established = any(c.get("type") == "Established" and c.get("status") == "True"
                      for c in conditions)
    return resources_of(crd) if established else ()
