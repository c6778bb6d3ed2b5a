"""Deletion as Kubernetes does it.

    preconditions (uid, resourceVersion) → Conflict on mismatch
    pod (or Alloc) bound to a node,
      grace > 0                          → set deletionTimestamp; the agent stops it
                                           and deletes it with grace 0
    finalizers present (or added by the
    Orphan / Foreground policy)          → set deletionTimestamp; the last finalizer
                                           removed deletes it
    otherwise                            → removed from the store now (Background:
                                           the garbage collector deletes dependents)

deletecollection (``delete_collection``) decides the same per object, from the
list it was given: the removals go to the store in batches (Store.delete_many).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from corral.api.errors import BadRequest, Conflict, Forbidden, NotFound
from corral.api.registry.core import MODIFIED, Registry, conflict, retry_attempts
from corral.api.resources import Resource
from corral.objects import Obj, ensure_meta, meta, now_rfc3339, status

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
_POLICIES = ("Orphan", "Background", "Foreground")
# The namespaces the control plane lives in; kube-apiserver's NamespaceLifecycle
# admission refuses to delete them.
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# A deletecollection's store batch: one transaction on SQLite, a few on etcd, and
# few enough events at once that no watcher's buffer overflows.
COLLECTION_BURST = 500
MARK_BURST = 128  # objects marked as deleting at once (the store commits each burst together)


@dataclass(frozen=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False

    @classmethod
    def from_body(cls, body: dict[str, Any] | None, query: dict[str, str]) -> DeleteOptions:
        body = body or {}
        if not isinstance(body, dict):
            raise BadRequest("DeleteOptions must be a JSON object")
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        policy = body.get("propagationPolicy", query.get("propagationPolicy"))
        if body.get("orphanDependents") is True or query.get("orphanDependents") == "true":
            policy = policy or "Orphan"
        pre = body.get("preconditions") or {}
        if not isinstance(pre, dict):
            raise BadRequest("preconditions must be an object")
        dry = body.get("dryRun") or query.get("dryRun")
        try:
            grace_int = int(grace) if grace is not None else None
        except (TypeError, ValueError):
            raise BadRequest(f"gracePeriodSeconds must be an integer, got {grace!r}") from None
        if grace_int is not None and grace_int > 2**63 - 1:
            raise BadRequest(f"gracePeriodSeconds must fit an int64, got {grace!r}")
        if grace_int is not None and grace_int < 0:
            grace_int = 0
        if policy is not None and policy not in _POLICIES:
            raise BadRequest(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                '"Orphan", "Background", "Foreground"'
            )
        return cls(grace_int, policy, pre.get("uid"), pre.get("resourceVersion"), bool(dry))


async def delete(
    reg: Registry, res: Resource, namespace: str | None, name: str, opts: DeleteOptions
) -> tuple[Obj, bool]:
    """Delete one object. Returns (object, gone): gone is False when the object
    stays with a deletionTimestamp (graceful or finalizers pending)."""
    if res.kind == "Namespace" and name in IMMORTAL_NAMESPACES:
        raise Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                        kind="namespaces", name=name)
    for _ in retry_attempts():
        current = await reg.get(res, namespace, name)
        _check_preconditions(res, name, current, opts)
        try:
            return await _delete_once(reg, res, current, opts)
        except Conflict:
            if opts.precondition_rv:
                raise
    raise conflict(res, name, MODIFIED)


async def _delete_once(reg: Registry, res: Resource, current: Obj,
                       opts: DeleteOptions) -> tuple[Obj, bool]:
    m = meta(current)
    finalizers, grace = _plan(res, current, opts)
    if res.kind == "Namespace":
        current.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        current.setdefault("status", {})["phase"] = "Terminating"
        return await _mark_deleting(reg, res, current, finalizers, 0, opts), False
    if finalizers or grace > 0:
        return await _mark_deleting(reg, res, current, finalizers, grace, opts), False
    if opts.dry_run:
        return current, True
    revision = await reg.remove(res, current)
    m["resourceVersion"] = str(revision)
    return current, True


def _plan(res: Resource, current: Obj, opts: DeleteOptions) -> tuple[list[str], int]:
    """The finalizers the object keeps (plus the policy's) and its grace period:
    both empty, it is removed at once; else it is marked as deleting."""
    finalizers = list(meta(current).get("finalizers") or [])
    if opts.propagation_policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
        finalizers.append(ORPHAN_FINALIZER)
    if opts.propagation_policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
        finalizers.append(FOREGROUND_FINALIZER)
    return finalizers, _grace_period(res, current, opts)


async def delete_collection(reg: Registry, res: Resource, listed: list[Obj],
                            opts: DeleteOptions) -> list[Obj]:
    """deletecollection of the ``listed`` objects, each as ``delete`` would, but
    without reading each again: those that go at once are removed in store
    batches (one transaction each, CAS on the listed resourceVersion); those
    that stay (finalizers, a grace period) are marked in concurrent bursts. One
    changed since the list is deleted again on its own; one gone is skipped.
    Returns the objects as deleted (or marked)."""
    removals: list[Obj] = []
    marks: list[tuple[Obj, list[str], int]] = []
    for obj in listed:
        finalizers, grace = _plan(res, obj, opts)
        if finalizers or grace > 0:
            marks.append((obj, finalizers, grace))
        else:
            removals.append(obj)
    done: list[Obj] = []
    retry: list[Obj] = []
    for start in range(0, len(removals), COLLECTION_BURST):
        burst = removals[start:start + COLLECTION_BURST]
        if opts.dry_run:
            done += burst
            continue
        results = await reg.remove_many(res, burst)
        done += [obj for obj, r in zip(burst, results) if r is None]
        retry += [obj for obj, r in zip(burst, results) if isinstance(r, Conflict)]
    for start in range(0, len(marks), MARK_BURST):
        outcomes = await asyncio.gather(*(
            _mark_deleting(reg, res, obj, finalizers, grace, opts)
            for obj, finalizers, grace in marks[start:start + MARK_BURST]),
            return_exceptions=True)
        for (obj, _, _), outcome in zip(marks[start:start + MARK_BURST], outcomes):
            _sort_outcome(obj, outcome, done, retry)
    for start in range(0, len(retry), MARK_BURST):
        again = await asyncio.gather(*(
            delete(reg, res, meta(obj).get("namespace"), meta(obj)["name"], opts)
            for obj in retry[start:start + MARK_BURST]), return_exceptions=True)
        for obj, result in zip(retry[start:start + MARK_BURST], again):
            _sort_outcome(obj, result[0] if isinstance(result, tuple) else result, done, [])
    return done


def _sort_outcome(obj: Obj, outcome: Obj | BaseException, done: list[Obj],
                  retry: list[Obj]) -> None:
    if isinstance(outcome, Conflict):
        retry.append(obj)
    elif isinstance(outcome, NotFound):
        return  # gone meanwhile: someone else deleted it
    elif isinstance(outcome, BaseException):
        raise outcome
    else:
        done.append(outcome)


async def _mark_deleting(reg: Registry, res: Resource, current: Obj, finalizers: list[str],
                         grace: int, opts: DeleteOptions) -> Obj:
    m = meta(current)
    rv = m["resourceVersion"]
    already = m.get("deletionTimestamp")
    old_grace = m.get("deletionGracePeriodSeconds")
    if already and (old_grace is None or grace >= old_grace) and finalizers == (
        m.get("finalizers") or []
    ):
        return current  # deleting already, and the request does not shorten it
    if finalizers:
        m["finalizers"] = finalizers
    m["deletionTimestamp"] = now_rfc3339(grace)
    m["deletionGracePeriodSeconds"] = grace
    if not already:
        m["generation"] = int(m.get("generation") or 1) + 1
    if opts.dry_run:
        return current
    return await reg.write_exact(res, current, rv)


def _grace_period(res: Resource, obj: Obj, opts: DeleteOptions) -> int:
    if res.kind not in ("Pod", "Alloc"):  # an Alloc's executor stops as a pod does
        return 0
    spec = obj.get("spec") or {}
    phase = status(obj).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0  # nothing runs it: nothing to wait for
    if opts.grace_period_seconds is not None:
        return opts.grace_period_seconds
    return int(spec.get("terminationGracePeriodSeconds", 30))


def _check_preconditions(res: Resource, name: str, obj: Obj, opts: DeleteOptions) -> None:
    m = ensure_meta(obj)
    if opts.precondition_uid and opts.precondition_uid != m.get("uid"):
        raise conflict(res, name, f"Precondition failed: UID in precondition: "
                       f"{opts.precondition_uid}, UID in object meta: {m.get('uid')}")
    if opts.precondition_rv and opts.precondition_rv != m.get("resourceVersion"):
        raise conflict(res, name, f"Precondition failed: ResourceVersion in precondition: "
                       f"{opts.precondition_rv}, ResourceVersion in object meta: "
                       f"{m.get('resourceVersion')}")
