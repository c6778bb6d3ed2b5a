"""Updates validate against the old object's model as this server last validated
it (registry/models.py), and take the parts they leave unchanged from it: on a
real registry (SQLite), a framework Alloc's spec and status writes are still
checked where they change, an object an admission plugin changed after
validation, or another master wrote, is validated against what is stored."""

from __future__ import annotations

import orjson
import pytest

from corral.api.errors import BadRequest, Invalid
from corral.api.kinds.codec import encode
from corral.api.registry import Registry
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj
from corral.store.base import Store

ALLOC = BY_KIND["Alloc"]
MERGE = "application/merge-patch+json"


class NodeOnCreate:
    """An admission plugin that binds every new Alloc to a node after validation
    (the stored object is then not what was validated)."""

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> list[str] | None:
        if op == "CREATE" and res.kind == "Alloc":
            obj["spec"]["nodeName"] = "bound-by-admission"
        return None


async def registry_on(store: Store) -> Registry:
    registry = Registry(store)
    if await registry.find(BY_KIND["Namespace"], None, "mesos") is None:
        await registry.create(BY_KIND["Namespace"], None, {"metadata": {"name": "mesos"}})
    return registry


def task(i: int) -> Obj:
    return {"id": f"t-{i}", "command": ["/bin/true"], "resources": {"cpu": "10m"}}


def alloc(node: str | None = "n1") -> Obj:
    spec: Obj = {"resources": {"cpu": "1"}, "slots": 2, "tasks": [task(0), task(1)]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "corral.dev/v1", "kind": "Alloc",
            "metadata": {"name": "fw", "namespace": "mesos"}, "spec": spec}


def states(*pairs: tuple[str, str]) -> list[Obj]:
    return [{"id": i, "state": s, "seq": n} for n, (i, s) in enumerate(pairs)]


async def patch(registry: Registry, body: Obj) -> Obj:
    result = await registry.patch(ALLOC, "mesos", "fw", MERGE, orjson.dumps(body))
    return result.obj


async def set_status(registry: Registry, tasks: list[Obj]) -> Obj:
    current = await registry.get(ALLOC, "mesos", "fw")
    current["status"] = {"phase": "Running", "tasks": tasks}
    return (await registry.update(ALLOC, "mesos", "fw", current, subresource="status")).obj


async def stored_alloc(store: Store) -> Obj:
    kv = await store.get(ALLOC.storage_key("mesos", "fw"))
    assert kv is not None
    stored: Obj = orjson.loads(kv.value)
    return stored


def model_of(registry: Registry, obj: Obj) -> Obj:
    key = ALLOC.storage_key("mesos", "fw")
    model = registry.models.get(key, int(obj["metadata"]["resourceVersion"]))
    assert model is not None
    return encode(model)


def cached(registry: Registry, obj: Obj) -> bool:
    key = ALLOC.storage_key("mesos", "fw")
    return registry.models.get(key, int(obj["metadata"]["resourceVersion"])) is not None


async def test_spec_and_status_writes_are_checked_where_they_change(store: Store) -> None:
    registry = await registry_on(store)
    created = (await registry.create(ALLOC, "mesos", alloc())).obj
    assert cached(registry, created)
    written = await set_status(registry, states(("t-0", "TASK_RUNNING")))
    assert cached(registry, written) and written["spec"] == created["spec"]
    # The spec write keeps the status (taken from the model as it was validated).
    patched = await patch(registry, {"spec": {"tasks": [task(1), task(2)], "slots": 3}})
    assert [t["id"] for t in patched["spec"]["tasks"]] == ["t-1", "t-2"]
    assert patched["status"] == written["status"] and cached(registry, patched)
    assert patched["metadata"]["generation"] == 2
    stored = await stored_alloc(store)
    assert stored["status"]["tasks"] == [{"id": "t-0", "state": "TASK_RUNNING", "seq": 0}]
    assert stored == model_of(registry, patched)  # what is kept is exactly what is stored
    written = await set_status(registry, states(("t-1", "TASK_FINISHED")))
    stored = await stored_alloc(store)
    assert stored == model_of(registry, written) and stored["spec"] == patched["spec"]
    # What changed is validated, against the old object: a task without its
    # command, an unknown state, a new node are refused naming the field.
    with pytest.raises(Invalid) as refused:
        await patch(registry, {"spec": {"tasks": [task(1), {"id": "t-3"}]}})
    assert "spec.tasks[1].command" in str(refused.value.to_status())
    with pytest.raises(Invalid) as refused:
        await set_status(registry, states(("t-1", "TASK_SLEEPING")))
    assert "status.tasks[0].state" in str(refused.value.to_status())
    with pytest.raises(Invalid) as refused:
        await patch(registry, {"spec": {"nodeName": "n2"}})
    assert "spec.nodeName" in str(refused.value.to_status())
    # Unknown fields in the part that changed are still found.
    with pytest.raises(BadRequest, match=r'unknown field "spec.tasks\[0\].bogus"'):
        await registry.patch(ALLOC, "mesos", "fw", MERGE, orjson.dumps(
            {"spec": {"tasks": [{**task(1), "bogus": 1}]}}), validation="Strict")
    warned = await registry.patch(ALLOC, "mesos", "fw", MERGE, orjson.dumps(
        {"spec": {"tasks": [{**task(1), "bogus": 1}]}}))
    assert warned.warnings == ['unknown field "spec.tasks[0].bogus"']
    assert "bogus" not in warned.obj["spec"]["tasks"][0]


async def test_an_object_admission_changed_is_validated_as_stored(store: Store) -> None:
    registry = await registry_on(store)
    registry.admission.append(NodeOnCreate())
    created = (await registry.create(ALLOC, "mesos", alloc(node=None))).obj
    assert created["spec"]["nodeName"] == "bound-by-admission"
    assert not cached(registry, created)  # what was validated had no node
    # Validated against the stored object (its node), not the model without one.
    with pytest.raises(Invalid) as refused:
        await patch(registry, {"spec": {"nodeName": "elsewhere"}})
    assert "spec.nodeName" in str(refused.value.to_status())


async def test_what_another_master_wrote_is_validated_as_stored(store: Store) -> None:
    ours = await registry_on(store)
    created = (await ours.create(ALLOC, "mesos", alloc(node=None))).obj
    assert cached(ours, created)
    other = await registry_on(store)  # a second master on the same store
    bound = await patch(other, {"spec": {"nodeName": "n9"}})
    assert not cached(ours, bound)  # ours holds the model of an older revision
    with pytest.raises(Invalid) as refused:
        await patch(ours, {"spec": {"nodeName": "n1"}})
    assert "spec.nodeName" in str(refused.value.to_status())
    kept = await patch(ours, {"spec": {"slots": 1}})
    assert kept["spec"]["nodeName"] == "n9" and cached(ours, kept)
