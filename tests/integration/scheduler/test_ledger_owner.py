"""The scheduler's per-node reservation ledger is owned by its Node: deleting the
node has the garbage collector delete the ledger (a real master with its
scheduler and controllers); an Alloc that grows in place is reserved again at
its new size, and others see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.api.alloc_view import pod_view
from corral.api.errors import NotFound
from corral.client.http import Client
from corral.objects import Obj
from corral.scheduler.ledger import LEDGER_NAMESPACE, Reservations, ledger_name
from corral.scheduler.requirements import PodRequirements, pod_requirements
from corral.scheduler.snapshot import ClusterSnapshot
from tests.cluster import Master
from tests.integration.scheduler.helpers import node_of, pod
from tests.manifests import node
from tests.poll import eventually


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    m = Master(tmp_path / "master").start()
    try:
        async with Client.from_kubeconfig(m.kubeconfig) as c:
            yield c
    finally:
        m.stop()


async def test_deleting_a_node_deletes_its_ledger(client: Client) -> None:
    created = await client.create(node("ledger-node"))
    await client.create(pod("placed"))
    assert await eventually(lambda: node_of(client, "placed"), what="pod bound") == "ledger-node"
    ledger = await client.get("ConfigMap", ledger_name("ledger-node"), LEDGER_NAMESPACE)
    assert ledger["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "ledger-node",
         "uid": created["metadata"]["uid"]}]

    await client.delete("Node", "ledger-node")

    async def ledger_gone() -> bool:
        try:
            await client.get("ConfigMap", ledger_name("ledger-node"), LEDGER_NAMESPACE)
        except NotFound:
            return True
        return False
    await eventually(ledger_gone, timeout=10.0, what="ledger deleted with its node")


def _alloc_view(cpu: str) -> Obj:
    """A framework Alloc's pod view (what the snapshots hold), at ``cpu``."""
    return pod_view({"metadata": {"name": "fw-alloc", "namespace": "mesos", "uid": "u-1"},
                     "spec": {"nodeName": "ledger-grow", "resources": {"cpu": cpu}}})


async def test_an_alloc_growing_in_place_is_reserved_again_and_seen_by_others(
        client: Client) -> None:
    """A Mesos framework's Alloc grows in place: its new size is checked against
    the node again, and a scheduler that still sees its old size keeps room for
    the difference (the ledger entry carries the size), so the two never
    over-commit the node."""
    await client.create(node("ledger-grow", cpu="1"))
    for name, cpu in (("first", "100m"), ("late", "500m"), ("fits", "200m")):
        # Pods that exist (readers fetch what others reserved), which the
        # cluster's own scheduler leaves alone.
        await client.create(pod(name, cpu=cpu, scheduler_name="by-hand"))
    master, scheduler = ClusterSnapshot(), ClusterSnapshot()
    for snap in (master, scheduler):
        snap.add_node(node("ledger-grow", cpu="1"))
        snap.add_pod(_alloc_view("200m"))
    def req(name: str, cpu: str) -> PodRequirements:
        return pod_requirements(pod(name, cpu=cpu, scheduler_name="by-hand"))
    framework_side = Reservations(client, master, lambda key: None)
    scheduler_side = Reservations(client, scheduler, lambda key: None)
    small = pod_requirements(_alloc_view("200m"))
    assert await framework_side.reserve("ledger-grow", small)
    # The scheduler reads the ledger as it is now (the Alloc at 200m).
    scheduler.add_pod(req("first", "100m"), "ledger-grow")
    assert await scheduler_side.reserve("ledger-grow", req("first", "100m"))

    too_big = pod_requirements(_alloc_view("950m"))  # 950 + 100 > 1000
    master.add_pod(too_big, "ledger-grow")
    assert not await framework_side.reserve("ledger-grow", too_big)  # checked again
    grown = pod_requirements(_alloc_view("700m"))
    master.add_pod(grown, "ledger-grow")
    assert await framework_side.reserve("ledger-grow", grown)

    # The scheduler still sees the Alloc at 200m: 200 + 100 + 500 fits there, but
    # its write meets the newer ledger, whose entry says 700m: refused.
    late = req("late", "500m")
    scheduler.add_pod(late, "ledger-grow")
    assert not await scheduler_side.reserve("ledger-grow", late)
    small_enough = req("fits", "200m")  # 700 + 100 + 200
    scheduler.add_pod(small_enough, "ledger-grow")
    assert await scheduler_side.reserve("ledger-grow", small_enough)
