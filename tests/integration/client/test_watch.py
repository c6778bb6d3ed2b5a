"""Watch against a real master: events in order, selectors, bookmarks, 410 Gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from corral.api import errors
from corral.client.http import Client
from corral.client.watch import WatchEvent
from tests.cluster import Master
from tests.integration.client.history import offline_delete_and_compact


def _cm(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "data": {"k": "v"}}


async def _take(events: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    got: list[WatchEvent] = []

    async def collect() -> None:
        async for event in events:
            if event.type != "BOOKMARK":
                got.append(event)
            if len(got) == n:
                return

    await asyncio.wait_for(collect(), 20)
    return got


async def test_events_in_order_from_resource_version(client: Client) -> None:
    start = (await client.list("configmaps", "default")).resource_version
    created = await client.create(_cm("w-order", app="w-order"))
    created["data"] = {"k": "2"}
    await client.update(created)
    await client.delete("configmaps", "w-order", "default")
    events = await _take(client.watch("configmaps", "default", resource_version=start,
                                      label_selector="app=w-order"), 3)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e.resource_version) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(start)
    assert events[1].object["data"] == {"k": "2"}


async def test_without_resource_version_existing_objects_come_as_added(client: Client) -> None:
    await client.create(_cm("w-exist", app="w-exist"))
    events = await _take(client.watch("configmaps", "default", label_selector="app=w-exist"), 1)
    assert (events[0].type, events[0].object["metadata"]["name"]) == ("ADDED", "w-exist")


async def test_field_selector_by_name(client: Client) -> None:
    start = (await client.list("configmaps", "default")).resource_version
    await client.create(_cm("w-other"))
    await client.create(_cm("w-named"))
    events = await _take(client.watch("configmaps", "default", resource_version=start,
                                      field_selector="metadata.name=w-named"), 1)
    assert events[0].object["metadata"]["name"] == "w-named"


async def test_server_timeout_ends_the_stream(client: Client) -> None:
    start = (await client.list("configmaps", "default")).resource_version
    seen = [e async for e in client.watch("configmaps", "default", resource_version=start,
                                          label_selector="app=none", timeout_seconds=1)]
    assert [e for e in seen if e.type != "BOOKMARK"] == []


async def test_compacted_resource_version_is_gone(fresh_master: Master) -> None:
    async with Client.from_kubeconfig(fresh_master.kubeconfig) as client:
        old = (await client.list("configmaps", "default")).resource_version
        await client.create(_cm("w-gone-1"))
        await client.create(_cm("w-gone-2"))
    fresh_master.stop()
    await offline_delete_and_compact(fresh_master, [])
    fresh_master.start()
    async with Client.from_kubeconfig(fresh_master.kubeconfig) as client:
        with pytest.raises(errors.Gone):
            await _take(client.watch("configmaps", "default", resource_version=old), 1)
