"""Fenced writes take the leader's Lease as this server last wrote or read it
while it is current (fencing.py). On a real registry (SQLite) with a second
registry on the same store as another master: a Lease another master took
since refuses the deposed leader's next write; one it only renewed (same
holder and term, a new revision) still lets it write; a deleted Lease refuses."""

from __future__ import annotations

import orjson
import pytest

from corral.api import fencing
from corral.api.errors import Forbidden
from corral.api.fencing import Fence, FencingStore
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.objects import Obj
from corral.store.base import Store

LEASE, CM = BY_KIND["Lease"], BY_KIND["ConfigMap"]


def lease(holder: str, term: int, renewed: str) -> Obj:
    return {"metadata": {"name": "leader", "namespace": "kube-system"},
            "spec": {"holderIdentity": holder, "leaseTransitions": term,
                     "leaseDurationSeconds": 15, "renewTime": renewed}}


async def write_as(registry: Registry, fence: Fence, name: str) -> None:
    token = fencing.CURRENT.set(fence)
    try:
        await registry.create(CM, "kube-system", {"metadata": {"name": name}})
    finally:
        fencing.CURRENT.reset(token)


async def test_the_lease_seen_here_stands_in_only_while_it_is_current(store: Store) -> None:
    ours = Registry(FencingStore(store))
    other = Registry(FencingStore(store))  # another master, on the same store
    await ours.create(BY_KIND["Namespace"], None, {"metadata": {"name": "kube-system"}})
    held = await ours.create(LEASE, "kube-system", lease("a", 1, "2026-12-04T00:00:00.000000Z"))
    fence_a = Fence("kube-system", "leader", "a", 1)
    await write_as(ours, fence_a, "one")  # the Lease as written here
    # Renewed by the other master: a new revision, same holder and term.
    renewed = await other.update(LEASE, "kube-system", "leader", {
        **held.obj, **lease("a", 1, "2026-12-04T00:00:01.000000Z")})
    await write_as(ours, fence_a, "two")
    # Taken by "b" in term 2 through the other master: "a" is deposed.
    await other.update(LEASE, "kube-system", "leader", {
        **renewed.obj, **lease("b", 2, "2026-12-04T00:00:20.000000Z")})
    with pytest.raises(Forbidden, match='held by "b" in term 2'):
        await write_as(ours, fence_a, "three")
    await write_as(ours, Fence("kube-system", "leader", "b", 2), "four")
    with pytest.raises(Forbidden, match='held by "b" in term 2'):  # and stays so
        await write_as(ours, fence_a, "five")
    taken = await ours.get(LEASE, "kube-system", "leader")
    await other.remove(LEASE, taken)
    with pytest.raises(Forbidden, match="is gone"):
        await write_as(ours, Fence("kube-system", "leader", "b", 2), "six")
    listed = await store.list(CM.storage_prefix("kube-system"))
    assert {orjson.loads(kv.value)["metadata"]["name"] for kv in listed.items} == {
        "one", "two", "four"}
