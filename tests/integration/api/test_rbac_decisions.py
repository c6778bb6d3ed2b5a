"""The RBAC authorizer remembers what the bindings grant each user, group set and
namespace; on a real registry and RbacCache (SQLite) a binding made, changed or
deleted after a decision changes the next one once its watch event arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.api.auth import User
from corral.api.authz import Attributes
from corral.api.rbac import RbacAuthorizer
from corral.api.rbac_cache import RbacCache
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.objects import Obj
from corral.store.open import open_store
from tests.poll import eventually

JANE = User("jane", "u-jane", ("dev",))
BINDING = BY_KIND["RoleBinding"]


@pytest.fixture
async def rbac(tmp_path: Path) -> AsyncIterator[tuple[Registry, RbacAuthorizer]]:
    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}")
    registry = Registry(store)
    cache = RbacCache(store)
    await cache.start()
    authorizer = RbacAuthorizer(cache.state)
    try:
        yield registry, authorizer
    finally:
        await cache.close()
        await store.close()


def may(authorizer: RbacAuthorizer, verb: str, user: User = JANE) -> bool:
    attrs = Attributes(user, verb, True, api_version="v1", namespace="team",
                       resource="pods", name="web")
    return authorizer.authorize(attrs)[0]


def binding(subject: dict[str, str], role: str = "pod-reader") -> Obj:
    return {"metadata": {"name": "readers", "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}]}


async def test_bindings_made_changed_and_deleted_change_decisions(
        rbac: tuple[Registry, RbacAuthorizer]) -> None:
    registry, authorizer = rbac
    await registry.create(BY_KIND["Namespace"], None, {"metadata": {"name": "team"}})
    for name, verbs in (("pod-reader", ["get"]), ("pod-deleter", ["delete"])):
        await registry.create(BY_KIND["Role"], "team", {
            "metadata": {"name": name, "namespace": "team"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]})
    assert not may(authorizer, "get") and not may(authorizer, "get")  # remembered: still no
    made = await registry.create(BINDING, "team", binding({"kind": "User", "name": "jane"}))
    await eventually(lambda: may(authorizer, "get"), what="jane may get pods")
    assert not may(authorizer, "delete")
    assert not may(authorizer, "get", User("joe", "u-joe", ("dev",)))
    # Bound by group instead: joe (in dev) now may, jane still may (same groups).
    await registry.update(BINDING, "team", "readers", {
        **made.obj, **binding({"kind": "Group", "name": "dev"})})
    await eventually(lambda: may(authorizer, "get", User("joe", "u-joe", ("dev",))),
                     what="the group's members may get pods")
    assert may(authorizer, "get") and not may(authorizer, "get", User("jane", "u-jane"))
    # Deleted, then bound again to another role: delete, no longer get.
    await registry.remove(BINDING, await registry.get(BINDING, "team", "readers"))
    await eventually(lambda: not may(authorizer, "get"), what="the binding's grant gone")
    await registry.create(BINDING, "team", binding({"kind": "Group", "name": "dev"},
                                                   "pod-deleter"))
    await eventually(lambda: may(authorizer, "delete"), what="delete granted")
    assert not may(authorizer, "get")
