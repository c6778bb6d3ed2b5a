"""Every client verb against a real master over HTTPS, including the errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from corral.api import errors
from corral.api.kinds.core import ConfigMap, Pod
from corral.client.http import Client, ServerUnreachable
from tests import manifests
from tests.cluster import Master, free_port


def _cm(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": "v"}}


def _pod(name: str, ns: str = "default") -> dict[str, Any]:
    return manifests.pod(name, namespace=ns, containers=[
        manifests.container(["sleep", "1"], name="c", image="i")])


def _deployment(name: str) -> dict[str, Any]:
    return manifests.deployment(name, namespace="default", template=manifests.pod_template(
        {"app": name}, containers=[{"name": "c", "image": "i"}]))


@pytest.fixture
async def client(quiet_master: Master) -> AsyncIterator[Client]:
    # No scheduler or controllers: they would write the objects these tests
    # update by resourceVersion (e.g. mark a fresh pod Unschedulable).
    async with Client.from_kubeconfig(quiet_master.kubeconfig) as c:
        yield c


async def test_create_get_list(client: Client) -> None:
    created = await client.create(_cm("v-one", app="x"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    got = await client.get("ConfigMap", "v-one", "default")
    assert got["data"] == {"k": "v"}
    page = await client.list("configmaps", "default", label_selector="app=x")
    assert [i["metadata"]["name"] for i in page.items] == ["v-one"]
    assert int(page.resource_version) >= int(created["metadata"]["resourceVersion"])


async def test_errors_are_rebuilt_from_status(client: Client) -> None:
    with pytest.raises(errors.NotFound, match='"nope" not found'):
        await client.get("pods", "nope", "default")
    await client.create(_cm("v-dup"))
    with pytest.raises(errors.AlreadyExists):
        await client.create(_cm("v-dup"))
    bad = _cm("v-bad")
    bad["metadata"]["name"] = "Not_A_Name"
    with pytest.raises(errors.Invalid) as info:
        await client.create(bad)
    assert info.value.causes and info.value.causes[0].field == "metadata.name"


async def test_update_is_compare_and_swap(client: Client) -> None:
    first = await client.create(_cm("v-cas"))
    first["data"] = {"k": "2"}
    second = await client.update(first)
    assert second["data"] == {"k": "2"}
    first["data"] = {"k": "3"}  # still carries the old resourceVersion
    with pytest.raises(errors.Conflict):
        await client.update(first)


async def test_patch_types(client: Client) -> None:
    await client.create(_cm("v-patch"))
    merged = await client.patch("configmaps", "v-patch", {"data": {"m": "1"}}, "default")
    assert merged["data"] == {"k": "v", "m": "1"}
    jsonp = await client.patch("configmaps", "v-patch",
                               [{"op": "remove", "path": "/data/k"}], "default",
                               patch_type="json")
    assert jsonp["data"] == {"m": "1"}
    strategic = await client.patch("configmaps", "v-patch", {"data": {"s": "1"}}, "default",
                                   patch_type="strategic")
    assert strategic["data"] == {"m": "1", "s": "1"}


async def test_pagination_and_list_all(client: Client) -> None:
    for i in range(5):
        await client.create(_cm(f"page-{i}", app="paged"))
    first = await client.list("configmaps", "default", label_selector="app=paged", limit=2)
    assert len(first.items) == 2 and first.continue_
    everything = await client.list_all("configmaps", "default", label_selector="app=paged",
                                       page_size=2)
    assert sorted(i["metadata"]["name"] for i in everything.items) == \
        [f"page-{i}" for i in range(5)]
    assert not everything.continue_


async def test_typed_reads_and_model_writes(client: Client) -> None:
    await client.create(ConfigMap.model_validate(_cm("v-typed")))
    typed = await client.get_as(ConfigMap, "v-typed", "default")
    assert isinstance(typed, ConfigMap) and typed.metadata.name == "v-typed"
    assert "v-typed" in [c.metadata.name for c in await client.list_as(ConfigMap, "default")]


async def test_delete_and_delete_collection(client: Client) -> None:
    await client.create(_cm("v-del"))
    await client.delete("configmaps", "v-del", "default")
    with pytest.raises(errors.NotFound):
        await client.get("configmaps", "v-del", "default")
    for i in range(3):
        await client.create(_cm(f"coll-{i}", app="coll"))
    gone = await client.delete_collection("configmaps", "default", label_selector="app=coll")
    assert len(gone) == 3
    assert (await client.list("configmaps", "default", label_selector="app=coll")).items == []


async def test_delete_precondition_conflict(client: Client) -> None:
    created = await client.create(_cm("v-pre"))
    with pytest.raises(errors.Conflict):
        await client.delete("configmaps", "v-pre", "default",
                            preconditions={"uid": "not-" + created["metadata"]["uid"]})


async def test_status_subresource(client: Client) -> None:
    pod = await client.create(_pod("v-status"))
    pod["status"] = {"phase": "Running"}
    updated = await client.update_status(pod)
    assert updated["status"]["phase"] == "Running"


async def test_bind_sets_node_and_rebind_conflicts(client: Client) -> None:
    await client.create(_pod("v-bind"))
    await client.bind("v-bind", "default", "node-a")
    pod = await client.get_as(Pod, "v-bind", "default")
    assert pod.spec.node_name == "node-a"
    with pytest.raises(errors.Conflict):
        await client.bind("v-bind", "default", "node-b")


async def test_scale(client: Client) -> None:
    await client.create(_deployment("v-scale"))
    assert (await client.get_scale("deployments", "v-scale", "default"))["spec"]["replicas"] == 1
    scaled = await client.set_scale("deployments", "v-scale", "default", 4)
    assert scaled["kind"] == "Scale" and scaled["spec"]["replicas"] == 4
    assert (await client.get("deployments", "v-scale", "default"))["spec"]["replicas"] == 4


async def test_evict(client: Client) -> None:
    await client.create(_pod("v-evict"))
    await client.evict("v-evict", "default")
    with pytest.raises(errors.NotFound):
        await client.evict("v-evict-absent", "default")


async def test_raw_for_anything_else(client: Client) -> None:
    version = (await client.raw("GET", "/version")).json()
    assert version["major"] == "1"


async def test_unknown_kind_is_bad_request(client: Client) -> None:
    with pytest.raises(errors.BadRequest, match="gizmos"):
        await client.list("gizmos")


async def test_wrong_token_is_unauthorized(master: Master) -> None:
    async with Client(master.url, token="wrong", ca_pem=master.ca_pem) as c:
        with pytest.raises(errors.Unauthorized):
            await c.list("pods")


async def test_unreachable_server_raises_after_retries() -> None:
    async with Client(f"http://127.0.0.1:{free_port()}", attempts=2) as c:
        with pytest.raises(ServerUnreachable):
            await c.create(_cm("never"))
