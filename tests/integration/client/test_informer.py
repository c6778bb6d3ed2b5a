"""Informer against a real master: initial list, events in order, indexes,
resync, and re-list after the master restarts with history compacted."""

from __future__ import annotations

from typing import Any

from corral.client.clock import FakeClock
from corral.client.http import Client
from corral.client.informer import Informer, key_of
from tests.cluster import Master
from tests.integration.client.history import offline_delete_and_compact
from tests.poll import eventually

Record = list[tuple[str, ...]]


def _cm(name: str, app: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "data": data or {"k": "v"}}


def _recording(informer: Informer) -> Record:
    seen: Record = []

    def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        seen.append(("update", new["metadata"]["name"], new["data"].get("k", "")))

    async def on_delete(obj: dict[str, Any]) -> None:  # async handlers work too
        seen.append(("delete", obj["metadata"]["name"]))

    informer.add_handler(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                         on_update=on_update, on_delete=on_delete)
    return seen


async def test_list_then_events_in_order(client: Client) -> None:
    await client.create(_cm("i-before", "i-order"))
    informer = Informer(client, "configmaps", "default", label_selector="app=i-order")
    seen = _recording(informer)
    async with informer:
        await informer.wait_synced(20)
        assert informer.has_synced and seen == [("add", "i-before")]
        obj = await client.create(_cm("i-new", "i-order"))
        obj["data"] = {"k": "2"}
        await client.update(obj)
        await client.delete("configmaps", "i-before", "default")
        await eventually(lambda: len(seen) == 4, what="three events")
    assert seen[1:] == [("add", "i-new"), ("update", "i-new", "2"), ("delete", "i-before")]
    assert informer.keys() == ["default/i-new"]
    assert informer.get("default", "i-new")["data"] == {"k": "2"}  # type: ignore[index]


async def test_indexes_follow_changes(client: Client) -> None:
    informer = Informer(client, "configmaps", "default", label_selector="tier")
    informer.add_index("tier", lambda o: [o["metadata"]["labels"]["tier"]])
    async with informer:
        await informer.wait_synced(20)
        a = await client.create({**_cm("i-idx", "i-idx"),
                                 "metadata": {"name": "i-idx", "labels": {"tier": "web"}}})
        await eventually(lambda: bool(informer.by_index("tier", "web")), what="indexed")
        a["metadata"]["labels"] = {"tier": "db"}
        await client.update(a)
        await eventually(lambda: bool(informer.by_index("tier", "db")), what="re-indexed")
        assert informer.by_index("tier", "web") == []
        assert [key_of(o) for o in informer.by_index("tier", "db")] == ["default/i-idx"]


async def test_failing_handler_does_not_stop_delivery(client: Client) -> None:
    informer = Informer(client, "configmaps", "default", label_selector="app=i-fail")
    added: list[str] = []

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken)
    informer.add_handler(on_add=lambda o: added.append(o["metadata"]["name"]))
    async with informer:
        await informer.wait_synced(20)
        await client.create(_cm("i-f1", "i-fail"))
        await client.create(_cm("i-f2", "i-fail"))
        await eventually(lambda: added == ["i-f1", "i-f2"], what="both adds")


async def test_resync_redelivers_cached_objects(client: Client) -> None:
    clock = FakeClock()
    await client.create(_cm("i-resync", "i-resync"))
    informer = Informer(client, "configmaps", "default", label_selector="app=i-resync",
                        resync_period=60, clock=clock)
    seen = _recording(informer)
    async with informer:
        await informer.wait_synced(20)
        await eventually(lambda: clock.sleepers == 1, what="resync timer armed")
        assert seen == [("add", "i-resync")]
        clock.advance(60)
        await eventually(lambda: len(seen) == 2, what="resync")
    assert seen[1] == ("update", "i-resync", "v")


async def test_relist_after_restart_synthesizes_deletes_and_updates(
        fresh_master: Master) -> None:
    async with Client.from_kubeconfig(fresh_master.kubeconfig) as client:
        await client.create(_cm("i-keep", "i-restart"))
        await client.create(_cm("i-lost", "i-restart"))
        informer = Informer(client, "configmaps", "default", label_selector="app=i-restart")
        seen = _recording(informer)
        async with informer:
            await informer.wait_synced(20)
            fresh_master.stop()
            # While nobody watches: i-lost disappears and its history is compacted away.
            await offline_delete_and_compact(fresh_master, [("ConfigMap", "default", "i-lost")])
            fresh_master.start()
            keep = await client.get("configmaps", "i-keep", "default")
            keep["data"] = {"k": "after"}
            await client.update(keep)
            await eventually(lambda: informer.keys() == ["default/i-keep"]
                         and informer.get("default", "i-keep")["data"]["k"] == "after",  # type: ignore[index]
                         what="re-list after restart")
    assert ("delete", "i-lost") in seen and ("update", "i-keep", "after") in seen
    assert seen.index(("delete", "i-lost")) > seen.index(("add", "i-lost"))
