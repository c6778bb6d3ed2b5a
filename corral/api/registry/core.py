"""Generic CRUD over the store for every resource, with Kubernetes' metadata rules.

    create:  name/generateName → namespace exists → prepare → uid, timestamps,
             generation 1 → store.create (AlreadyExists on a taken key)
    update:  read → precondition (resourceVersion, uid) → keep server-owned
             metadata → main resource keeps status / status subresource keeps
             the rest → prepare → generation++ on spec change → store CAS
    patch:   read → apply patch → update; a lost CAS is retried (re-read,
             re-apply), as GuaranteedUpdate does. The only precondition is a
             resourceVersion the patch itself sets: re-applied to a newer object
             it no longer matches, so that patch gets its 409 instead of a retry.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from corral.api.body import MAX_BODY_BYTES, parse_object, too_large
from corral.api.conversion import to_served, to_stored
from corral.api.errors import (
    AlreadyExists,
    APIError,
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    invalid,
)
from corral.api.patch import apply_patch, apply_server_side
from corral.api.registry.models import ModelCache
from corral.api.registry.objects import dump, generated_name, load, new_uid
from corral.api.registry.prepare import FieldValidation, Prepared, prepare
from corral.api.resources import BY_KIND, Resource, ServedTable
from corral.objects import Obj, ensure_meta, meta, now_rfc3339, spec, status
from corral.store.base import Deletion, Store
from corral.store.errors import KeyExists, KeyNotFound, RevisionMismatch, StoreError

# Kinds whose create starts from an empty status (the user cannot set it).
_STATUS_RESET_ON_CREATE = {"Pod", "Deployment", "ReplicaSet", "Job", "Service", "ResourceQuota"}
_SERVER_OWNED_META = ("uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation", "namespace", "name")
# Seconds a read-modify-write keeps retrying a lost CAS: GuaranteedUpdate retries
# until the request times out (kube-apiserver: 60 s); on a loaded machine 20
# writers on one object made 10 s too short for the unluckiest of them.
_RETRY_BUDGET = 60.0


@dataclass
class Result:
    obj: Obj
    warnings: list[str] = field(default_factory=list)
    created: bool = False


def retry_attempts(budget: float = _RETRY_BUDGET) -> Iterator[int]:
    """Attempts of a server-side read-modify-write (patch, scale, delete) that may
    lose its compare-and-swap to another writer. kube-apiserver's GuaranteedUpdate
    retries until it wins; a fixed count can lose every time to a writer in a
    tight loop, so this bounds the retrying in time instead."""
    deadline = time.monotonic() + budget
    attempt = 0
    while attempt < 3 or time.monotonic() < deadline:
        yield attempt
        attempt += 1


class Admission(Protocol):
    """Admission plugins see every create/update after validation, before the write.
    On a dry run they decide as always but change nothing (no quota charged)."""

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> list[str] | None:
        """Refuse (raise an APIError), change ``obj``, or admit it; what it returns
        are warnings for the client (Warning headers; Pod Security's warn mode)."""
        ...


def describe(res: Resource, name: str) -> str:
    """'pods "web"' / 'deployments.apps "web"' as Kubernetes names objects in errors."""
    qualified = f"{res.plural}.{res.group}" if res.group else res.plural
    return f'{qualified} "{name}"'


def not_found(res: Resource, name: str) -> NotFound:
    return NotFound(f"{describe(res, name)} not found", kind=res.plural, name=name,
                    group=res.group)


def conflict(res: Resource, name: str, why: str) -> Conflict:
    return Conflict(f"Operation cannot be fulfilled on {describe(res, name)}: {why}",
                    kind=res.plural, name=name, group=res.group)


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


class LostRace(Conflict):
    """The store's compare-and-swap failed: another writer got in between this
    request's read and its write. Server-side read-modify-writes (patch) retry
    on it; a client's own precondition failing is a plain Conflict instead."""


def lost_race(res: Resource, name: str) -> LostRace:
    return LostRace(f"Operation cannot be fulfilled on {describe(res, name)}: {MODIFIED}",
                    kind=res.plural, name=name, group=res.group)


class Registry:
    def __init__(self, store: Store, admission: list[Admission] | None = None) -> None:
        self.store = store
        self.admission: list[Admission] = admission or []
        # Hooks run after an object was deleted from the store (e.g. freeing a
        # Service's clusterIP); they must not fail the delete.
        self.on_deleted: list[Callable[[Resource, Obj], Awaitable[None]]] = []
        # Hooks run after an object was created or updated in the store (a CRD
        # starts being served here at once, before the watch tells the others).
        self.on_written: list[Callable[[Resource, Obj], Awaitable[None]]] = []
        # What this server serves: the built-in kinds and the CRDs' (corral.api.crd).
        self.served = ServedTable()
        # The model each object was last validated as: an update's old model.
        self.models = ModelCache()

    # ---- reads ---------------------------------------------------------------

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        kv = await self.store.get(res.storage_key(namespace, name))
        if kv is None:
            raise not_found(res, name)
        return load(kv)

    async def find(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        kv = await self.store.get(res.storage_key(namespace, name))
        return load(kv) if kv is not None else None

    # ---- create --------------------------------------------------------------

    async def create(
        self, res: Resource, namespace: str | None, body: Obj, *,
        validation: FieldValidation = "Warn", dry_run: bool = False,
    ) -> Result:
        obj = self._check_identity(res, namespace, body)
        if res.custom is not None and res.custom.terminating:
            raise MethodNotAllowed("create not allowed while custom resource definition "
                                   "is terminating", kind=res.plural, group=res.group)
        m = ensure_meta(obj)
        if not m.get("name"):
            prefix = m.get("generateName")
            if not prefix:
                raise _name_required(res)
            m["name"] = generated_name(str(prefix))
        if res.namespaced:
            await self._check_namespace_open(namespace or "")
        for key in ("uid", "resourceVersion", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation"):
            m.pop(key, None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339()
        m["generation"] = 1
        if res.kind in _STATUS_RESET_ON_CREATE or (
                res.custom is not None and "status" in res.subresources):
            obj.pop("status", None)
        if res.kind in _STATUS_RESET_ON_CREATE:
            obj["status"] = {"phase": "Pending"} if res.kind == "Pod" else {}
        elif res.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        prepared = prepare(res, obj, old=None, validation=validation)
        validated = _encoded(prepared)
        for plugin in self.admission:
            prepared.warnings += await plugin.admit("CREATE", res, prepared.obj, None,
                                                    dry_run=dry_run) or []
        if dry_run:
            return Result(prepared.obj, prepared.warnings, created=True)
        name = ensure_meta(prepared.obj)["name"]
        key = res.storage_key(namespace, name)
        value = _stored(prepared.obj)
        try:
            revision = await self.store.create(key, value)
        except KeyExists:
            raise AlreadyExists(f"{describe(res, name)} already exists", kind=res.plural,
                                name=name, group=res.group) from None
        self._remember(key, revision, prepared, validated, value)
        ensure_meta(prepared.obj)["resourceVersion"] = str(revision)
        await self._after_write(res, prepared.obj)
        return Result(prepared.obj, prepared.warnings, created=True)

    def _check_identity(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        obj = dict(body)
        kind = obj.get("kind") or res.kind
        api_version = obj.get("apiVersion") or res.api_version
        if kind != res.kind or api_version != res.api_version:
            raise BadRequest(
                f"the API version in the data ({api_version}) and kind ({kind}) do not match "
                f"the request: expected {res.api_version} {res.kind}"
            )
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        m = dict(meta(obj)) if isinstance(obj.get("metadata"), dict) else None
        if m is None:
            if obj.get("metadata") is not None:
                raise BadRequest("metadata must be an object")
            m = {}
        obj["metadata"] = m
        if res.namespaced:
            body_ns = m.get("namespace")
            if body_ns and body_ns != namespace:
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request"
                )
            m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        return obj

    async def _check_namespace_open(self, namespace: str) -> None:
        ns = await self.find(BY_KIND["Namespace"], None, namespace)
        if ns is None:
            raise NotFound(f'namespaces "{namespace}" not found', kind="namespaces",
                           name=namespace)
        if ensure_meta(ns).get("deletionTimestamp"):
            raise Forbidden(
                f"unable to create new content in namespace {namespace} because it is "
                "being terminated", kind="namespaces", name=namespace,
            )

    # ---- update / patch ------------------------------------------------------

    async def update(
        self, res: Resource, namespace: str | None, name: str, body: Obj, *,
        subresource: str | None = None, validation: FieldValidation = "Warn",
        dry_run: bool = False,
    ) -> Result:
        obj = self._check_identity(res, namespace, body)
        body_name = ensure_meta(obj).get("name")
        if body_name and body_name != name:
            raise BadRequest(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        current = await self.get(res, namespace, name)
        want_rv = str(ensure_meta(obj).get("resourceVersion") or "")
        if want_rv and want_rv != meta(current)["resourceVersion"]:
            raise conflict(res, name, MODIFIED)
        return await self._replace(res, namespace, name, current, obj, subresource=subresource,
                                   validation=validation, dry_run=dry_run)

    async def patch(
        self, res: Resource, namespace: str | None, name: str, content_type: str, body: bytes,
        *, served: Resource | None = None, subresource: str | None = None,
        validation: FieldValidation = "Warn", dry_run: bool = False,
    ) -> Result:
        """``served``: the version the patch is written against when it is not the
        stored one (autoscaling/v1 of a v2 HPA): the patch applies to the object
        as that version shows it, and the result is converted back."""
        view = served or res
        server_side_apply = content_type.startswith("application/apply-patch")
        for _ in retry_attempts():
            current = await self.find(res, namespace, name)
            warnings: list[str] = []
            if current is None:
                if server_side_apply:
                    created = await self.create(
                        res, namespace, to_stored(view, _apply_body(body), validation, warnings),
                        validation=validation, dry_run=dry_run)
                    created.warnings[:0] = warnings
                    return created
                raise not_found(res, name)
            shown = to_served(view, current)
            if server_side_apply:
                patched = apply_server_side(shown, _apply_body(body), res.kind)
            else:
                patched = apply_patch(content_type, shown, body, res.kind,
                                      custom=res.custom is not None)
            patched = to_stored(view, patched, validation, warnings)
            _check_name_kept(res, name, patched)
            # The patch was applied to the object just read, so the result carries
            # that object's resourceVersion unless the patch set one of its own.
            sent_rv = str(ensure_meta(patched).get("resourceVersion") or "")
            if sent_rv and sent_rv != meta(current)["resourceVersion"]:
                raise conflict(res, name, MODIFIED)
            try:
                result = await self._replace(
                    res, namespace, name, current, self._check_identity(res, namespace, patched),
                    subresource=subresource, validation=validation, dry_run=dry_run,
                )
                result.warnings[:0] = warnings
                return result
            except LostRace:
                await asyncio.sleep(0)  # re-read and re-apply the patch
        raise conflict(res, name, "too many concurrent writers; try again")

    async def _replace(
        self, res: Resource, namespace: str | None, name: str, current: Obj, obj: Obj, *,
        subresource: str | None, validation: FieldValidation, dry_run: bool,
    ) -> Result:
        new = _merge_server_owned(res, current, obj, subresource)
        if res.kind == "Service":
            _drop_node_ports_of_old_type(current, new)
        _check_uid(res, name, current, obj)
        _check_finalizers(res, name, current, new)
        key = res.storage_key(namespace, name)
        expected = int(meta(current)["resourceVersion"])
        prepared = prepare(res, new, old=_without_rv(current), validation=validation,
                           old_model=self.models.get(key, expected))
        if _spec_changed(res, current, prepared.obj):
            prepared.set_generation(int(meta(current).get("generation") or 1) + 1)
        validated = _encoded(prepared)
        for plugin in self.admission:
            prepared.warnings += await plugin.admit("UPDATE", res, prepared.obj, current,
                                                    dry_run=dry_run) or []
        if dry_run:  # nothing written: the object keeps the revision it was read at
            ensure_meta(prepared.obj)["resourceVersion"] = meta(current)["resourceVersion"]
            return Result(prepared.obj, prepared.warnings)
        new_meta = ensure_meta(prepared.obj)
        removed = bool(new_meta.get("deletionTimestamp")) and not _removal_blocked(prepared.obj)
        value = b""
        try:
            if removed:
                revision = await self.store.delete(key, expected)
            else:
                value = _stored(prepared.obj)
                revision = await self.store.update(key, value, expected)
        except RevisionMismatch:
            raise lost_race(res, name) from None
        except KeyNotFound:
            raise not_found(res, name) from None
        if removed:
            self.models.forget(key)
        else:
            self._remember(key, revision, prepared, validated, value)
        new_meta["resourceVersion"] = str(revision)
        await (self._after_delete if removed else self._after_write)(res, prepared.obj)
        return Result(prepared.obj, prepared.warnings)

    def _remember(self, key: str, revision: int, prepared: Prepared, validated: bytes,
                  value: bytes) -> None:
        """Keep the model as the next update's old one, if it is what was stored
        (``validated`` is its encoding before admission, ``value`` what was stored)."""
        canonical = prepared.model is not None and value == validated
        self.models.put(key, revision, prepared.model if canonical else None, len(value))

    async def _after_write(self, res: Resource, obj: Obj) -> None:
        for hook in self.on_written:
            await hook(res, obj)

    async def _after_delete(self, res: Resource, obj: Obj) -> None:
        for hook in self.on_deleted:
            try:
                await hook(res, obj)
            except APIError:
                pass

    async def write_exact(self, res: Resource, obj: Obj, expected_rv: str) -> Obj:
        """CAS-write an object the server itself computed (deletion marks, bindings)."""
        m = ensure_meta(obj)
        key = res.storage_key(m.get("namespace"), m["name"])
        try:
            revision = await self.store.update(key, _stored(obj), int(expected_rv))
        except RevisionMismatch:
            raise conflict(res, m["name"], MODIFIED) from None
        except KeyNotFound:
            raise not_found(res, m["name"]) from None
        m["resourceVersion"] = str(revision)
        await self._after_write(res, obj)
        return obj

    async def remove(self, res: Resource, obj: Obj) -> int:
        """Delete an object from the store (CAS on its resourceVersion)."""
        m = ensure_meta(obj)
        try:
            revision = await self.store.delete(res.storage_key(m.get("namespace"), m["name"]),
                                               int(m["resourceVersion"]))
        except RevisionMismatch:
            raise conflict(res, m["name"], MODIFIED) from None
        except KeyNotFound:
            raise not_found(res, m["name"]) from None
        await self._after_delete(res, obj)
        return revision

    async def remove_many(self, res: Resource, objs: list[Obj]) -> list[APIError | None]:
        """Delete objects from the store in one batch, each CAS on its
        resourceVersion; per object None (deleted: its resourceVersion is now
        the delete's) or its Conflict / NotFound. A store failure is raised
        after the hooks of what was deleted ran."""
        deletions = [Deletion(res.storage_key(meta(o).get("namespace"), meta(o)["name"]),
                              int(meta(o)["resourceVersion"])) for o in objs]
        outcomes: list[APIError | None] = []
        failure: StoreError | None = None
        for obj, result in zip(objs, await self.store.delete_many(deletions)):
            name = meta(obj)["name"]
            if isinstance(result, int):
                meta(obj)["resourceVersion"] = str(result)
                await self._after_delete(res, obj)
                outcomes.append(None)
            elif isinstance(result, RevisionMismatch):
                outcomes.append(conflict(res, name, MODIFIED))
            elif isinstance(result, KeyNotFound):
                outcomes.append(not_found(res, name))
            else:
                failure = failure or result
        if failure is not None:
            raise failure
        return outcomes


def _stored(obj: Obj) -> bytes:
    """The stored form, refused past the size a request may have (a body within the
    limit can still grow: defaults, a YAML document's aliases, a patch)."""
    value = dump(obj)
    if len(value) > MAX_BODY_BYTES:
        raise too_large()
    return value


def _encoded(prepared: Prepared) -> bytes:
    """What ``prepared`` stores as if no admission plugin changes it."""
    return dump(prepared.obj) if prepared.model is not None else b""


def _name_required(res: Resource) -> APIError:
    return invalid(res.kind, "", [Cause("metadata.name", "Required value: name or "
                                        "generateName is required", "FieldValueRequired")],
                   res.group)


def _check_name_kept(res: Resource, name: str, patched: Obj) -> None:
    """A patch may not rename (kube-apiserver's ValidateObjectMetaUpdate)."""
    new_name = ensure_meta(patched).get("name")
    if new_name != name:
        raise invalid(res.kind, name, [Cause(
            "metadata.name", f"Invalid value: {json.dumps(new_name)}: field is immutable")],
            res.group)


def _apply_body(body: bytes) -> Obj:
    return parse_object(body, "application/json")


def _without_rv(obj: Obj) -> Obj:
    kept = {k: v for k, v in ensure_meta(obj).items() if k != "resourceVersion"}
    return {**obj, "metadata": kept}


def _merge_server_owned(res: Resource, current: Obj, incoming: Obj,
                        subresource: str | None) -> Obj:
    """The update's result: the main resource keeps the stored status, the status
    subresource keeps everything but status (a CertificateSigningRequest's approval
    everything but its conditions); server-owned metadata is kept."""
    if subresource == "approval":
        conditions = (incoming.get("status") or {}).get("conditions")
        new = {**current, "status": {**(current.get("status") or {}),
                                     "conditions": conditions or []}}
        new["metadata"] = dict(meta(current))
    elif subresource in ("status", "finalize"):
        part = "status" if subresource == "status" else "spec"
        new = {**current, part: incoming.get(part, {})}
        new["metadata"] = dict(meta(current))
    else:
        new = dict(incoming)
        if "status" in res.subresources:
            if "status" in current:
                new["status"] = current["status"]
            else:
                new.pop("status", None)
        new_meta = dict(ensure_meta(incoming))
        for key in _SERVER_OWNED_META:
            if key in meta(current):
                new_meta[key] = meta(current)[key]
            else:
                new_meta.pop(key, None)
        new["metadata"] = new_meta
    new["metadata"].pop("resourceVersion", None)
    return new


_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _drop_node_ports_of_old_type(current: Obj, new: Obj) -> None:
    """A Service changed from NodePort/LoadBalancer to ClusterIP loses its node
    ports, as kube-apiserver clears the fields of the old type before validating
    (the allocator then frees them)."""
    old_type = (current.get("spec") or {}).get("type")
    spec = new.get("spec")
    if not isinstance(spec, dict) or old_type not in _NODE_PORT_TYPES:
        return
    if spec.get("type", "ClusterIP") in _NODE_PORT_TYPES:
        return
    ports = spec.get("ports")
    if isinstance(ports, list):
        spec["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} if isinstance(p, dict)
                         else p for p in ports]


def _check_uid(res: Resource, name: str, current: Obj, incoming: Obj) -> None:
    uid = ensure_meta(incoming).get("uid")
    if uid and uid != meta(current).get("uid"):
        raise conflict(res, name, f"Precondition failed: UID in precondition: {uid}, "
                       f"UID in object meta: {meta(current).get('uid')}")


def _check_finalizers(res: Resource, name: str, current: Obj, new: Obj) -> None:
    if not meta(current).get("deletionTimestamp"):
        return
    added = set(meta(new).get("finalizers") or []) - set(meta(current).get("finalizers") or [])
    if added:
        raise invalid(res.kind, name, [Cause(
            "metadata.finalizers",
            f"Forbidden: no new finalizers can be added if the object is being deleted, "
            f"found new finalizers {sorted(added)}", "FieldValueForbidden")], res.group)


def _spec_changed(res: Resource, old: Obj, new: Obj) -> bool:
    if res.has_spec:
        return old.get("spec") != new.get("spec")
    strip = ("metadata", "status", "kind", "apiVersion")
    return {k: v for k, v in old.items() if k not in strip} != {
        k: v for k, v in new.items() if k not in strip}


def _removal_blocked(obj: Obj) -> bool:
    """Whether an object marked for deletion must stay: finalizers pending, a
    namespace whose content is still being removed, or a bound, running pod being
    gracefully deleted (its agent stops it, then deletes it with grace 0)."""
    if ensure_meta(obj).get("finalizers"):
        return True
    if obj.get("kind") == "Namespace":
        return bool(spec(obj).get("finalizers"))
    if obj.get("kind") == "Pod":
        grace = ensure_meta(obj).get("deletionGracePeriodSeconds")
        phase = status(obj).get("phase")
        return bool(spec(obj).get("nodeName")) and bool(grace) and phase not in (
            "Succeeded", "Failed")
    return False
