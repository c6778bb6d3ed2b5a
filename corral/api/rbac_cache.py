"""Keeps the RBAC authorizer's objects in memory, current with the store.

    start(): list the four RBAC kinds (the state is complete before the server
             answers anything), then one watch task per kind applies every change
    a watch too old (410 Gone) lists again; close() cancels the tasks.

ensure_default_policy() writes corral/api/rbac_policy.py's roles and bindings
(cluster-wide, and the few namespaced ones in kube-system).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from corral.api.errors import AlreadyExists, Gone
from corral.api.rbac import RbacState
from corral.api.rbac_policy import (
    AUTOUPDATE,
    cluster_role_bindings,
    cluster_roles,
    role_bindings,
    roles,
)
from corral.api.registry import Registry
from corral.api.registry.read import Filter, list_objects, watch_objects
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj, meta
from corral.store.base import Store

log = logging.getLogger(__name__)
KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
# The fields a default object's reconciliation restores.
_POLICY_FIELDS = ("rules", "aggregationRule", "roleRef", "subjects")


async def ensure_default_policy(registry: Registry) -> None:
    for kind, objects in (("ClusterRole", cluster_roles()),
                          ("ClusterRoleBinding", cluster_role_bindings()),
                          ("Role", roles()), ("RoleBinding", role_bindings())):
        res = BY_KIND[kind]
        for obj in objects:
            namespace = meta(obj).get("namespace") if res.namespaced else None
            try:
                await registry.create(res, namespace, obj)
            except AlreadyExists:
                await _reconcile(registry, res, obj)


async def _reconcile(registry: Registry, res: Resource, want: Obj) -> None:
    name = want["metadata"]["name"]
    namespace = want["metadata"].get("namespace") if res.namespaced else None
    current = await registry.find(res, namespace, name)
    if current is None or (meta(current).get("annotations") or {}).get(AUTOUPDATE) == "false":
        return
    if all(current.get(f) == want.get(f) for f in _POLICY_FIELDS):
        return
    updated = {**current, **{f: want[f] for f in _POLICY_FIELDS if f in want}}
    await registry.update(res, namespace, name, updated)


class RbacCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.state = RbacState()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for kind in KINDS:
            revision = await self._load(BY_KIND[kind])
            self._tasks.append(asyncio.create_task(self._follow(BY_KIND[kind], revision)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def _table(self, res: Resource) -> dict[Any, Obj]:
        tables: dict[str, dict[Any, Obj]] = {
            "Role": self.state.roles, "ClusterRole": self.state.cluster_roles,
            "RoleBinding": self.state.role_bindings,
            "ClusterRoleBinding": self.state.cluster_role_bindings,
        }
        return tables[res.kind]

    async def _load(self, res: Resource) -> int:
        page = await list_objects(self.store, res, None, Filter(res))
        table = self._table(res)
        table.clear()
        for obj in page.items:
            table[_key(res, obj)] = obj
        self.state.generation += 1
        return page.revision

    async def _follow(self, res: Resource, revision: int) -> None:
        table = self._table(res)
        while True:
            try:
                async for kind, obj in watch_objects(self.store, res, None, Filter(res),
                                                     str(revision)):
                    revision = int(meta(obj).get("resourceVersion") or revision)
                    if kind == "DELETED":
                        table.pop(_key(res, obj), None)
                    else:
                        table[_key(res, obj)] = obj
                    self.state.generation += 1
            except Gone:
                log.info("rbac watch too old, listing again kind=%s", res.kind)
                revision = await self._load(res)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store restarting: keep the last state, retry
                log.exception("rbac watch failed kind=%s", res.kind)
                await asyncio.sleep(1.0)
                revision = await _reload_quietly(self, res, revision)


async def _reload_quietly(cache: RbacCache, res: Resource, revision: int) -> int:
    try:
        return await cache._load(res)
    except Exception:
        log.exception("rbac list failed kind=%s", res.kind)
        return revision


def _key(res: Resource, obj: Obj) -> Any:
    m = meta(obj)
    return (m.get("namespace", ""), m["name"]) if res.namespaced else m["name"]
