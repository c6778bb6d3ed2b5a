"""The scheduler's per-node reservation ledger is owned by its Node: deleting the
node has the garbage collector delete the ledger (a real master with its
scheduler and controllers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.api.errors import NotFound
from corral.client.http import Client
from corral.scheduler.ledger import LEDGER_NAMESPACE, ledger_name
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
