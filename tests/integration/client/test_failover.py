"""A Client of several masters reaches a live one: a master that refuses the
connection is skipped at once, for reads, writes (nothing was sent) and watches."""

from __future__ import annotations

from corral.client.http import Client
from tests.cluster import Master, free_port


async def test_a_refusing_master_is_skipped_for_reads_and_writes(master: Master) -> None:
    dead = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    async with Client(f"{dead},{master.url}", master.token, master.ca_pem) as client:
        assert client.servers == [dead, master.url]
        assert client.current_server == dead
        await client.list("Namespace")
        assert client.current_server == master.url
        created = await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "failover-write"}}, "default")
        assert created["metadata"]["name"] == "failover-write"
        events = client.watch("ConfigMap", "default", resource_version="0")
        first = await anext(events)
        assert first.object["metadata"]["name"]
        await events.aclose()  # type: ignore[attr-defined]
