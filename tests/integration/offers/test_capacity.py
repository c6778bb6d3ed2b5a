"""Capacity against a real master: nodes, pods and Allocs written through the API
(no scheduler or controllers, so only the test writes) reach each node's free
part through the informers, as the allocation loop reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from corral.client.http import Client
from corral.offers.capacity import Capacity
from corral.offers.resources import Resources
from tests.cluster import Master
from tests.manifests import container, node, pod
from tests.poll import eventually

RANGE = (10000, 10009)
HOST_PORTS_NS = "cap-hostports"  # Pod Security baseline refuses hostPorts elsewhere


@pytest.fixture
async def capacity(quiet_master: Master) -> AsyncIterator[tuple[Client, Capacity]]:
    async with Client.from_kubeconfig(quiet_master.kubeconfig) as client:
        cap = Capacity(client, port_range=RANGE)
        await cap.start(timeout=30)
        try:
            yield client, cap
        finally:
            await cap.stop()


def bound_pod(name: str, node_name: str, cpu: str, host_port: int | None = None) -> Any:
    ports = [{"containerPort": 80, "hostPort": host_port}] if host_port else []
    return pod(name, namespace=HOST_PORTS_NS, nodeName=node_name, containers=[container(
        ["true"], resources={"requests": {"cpu": cpu, "memory": "1Gi"}}, ports=ports)])


def alloc(name: str, node_name: str, cpu: str, owner_kind: str) -> Any:
    return {"apiVersion": "corral.dev/v1", "kind": "Alloc",
            "metadata": {"name": name, "namespace": "default", "ownerReferences": [
                {"apiVersion": "corral.dev/v1", "kind": owner_kind, "name": "owner",
                 "uid": "00000000-0000-0000-0000-000000000001"}]},
            "spec": {"nodeName": node_name, "slots": 1,
                     "resources": {"cpu": cpu, "memory": "1Gi"}}}


async def test_free_follows_pods_allocs_and_cordons(capacity: tuple[Client, Capacity]) -> None:
    client, cap = capacity
    changes: list[int] = []
    cap.add_listener(lambda: changes.append(1))
    full = Resources(cpus=4, mem=8192, ports=(RANGE,))
    await client.create(node("cap-a"))
    await client.create(node("cap-b"))
    await eventually(lambda: cap.free().get("cap-a") == full and cap.free().get("cap-b") == full,
                     what="both nodes offered whole")
    assert cap.totals()["cap-a"] == full
    assert changes

    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": HOST_PORTS_NS, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
    await client.create(bound_pod("cap-web", "cap-a", "1", host_port=10005))
    await client.create(alloc("cap-fw", "cap-a", "1", "Framework"))
    await client.create(alloc("cap-batch", "cap-b", "1500m", "Job"))
    # The pod and the Job's Alloc shrink free; the framework's Alloc is the allocator's.
    await eventually(lambda: cap.free()["cap-a"] == Resources(
        cpus=3, mem=7168, ports=((10000, 10004), (10006, 10009))), what="cap-a less the pod")
    await eventually(lambda: cap.free()["cap-b"] == Resources(cpus=2.5, mem=7168, ports=(RANGE,)),
                     what="cap-b less the Job's Alloc")
    assert cap.lookup("default/Alloc.cap-fw") is not None
    assert cap.lookup(f"{HOST_PORTS_NS}/cap-web") is not None

    await client.patch("Node", "cap-b", {"spec": {"unschedulable": True}})
    await eventually(lambda: "cap-b" not in cap.free(), what="cordoned node offers nothing")
    assert "cap-b" not in cap.totals()

    await client.delete("Pod", "cap-web", HOST_PORTS_NS, grace_period_seconds=0)
    await eventually(lambda: cap.free()["cap-a"] == full, what="the pod's room back")


async def test_an_assumed_alloc_counts_at_once_until_forgotten(
        capacity: tuple[Client, Capacity]) -> None:
    client, cap = capacity
    await client.create(node("cap-c", cpu="2", memory="4Gi"))
    await eventually(lambda: "cap-c" in cap.free(), what="cap-c seen")
    mine = alloc("cap-mine", "", "1", "Job")
    req = cap.assume(mine, "cap-c")
    assert req.cpu == 1000
    assert cap.free()["cap-c"].cpus == 1
    assert cap.lookup("default/Alloc.cap-mine") == (req, "cap-c")
    cap.forget(mine)
    assert cap.free()["cap-c"].cpus == 2
    await client.delete("Node", "cap-c")
    await eventually(lambda: "cap-c" not in cap.free(), what="deleted node gone")
