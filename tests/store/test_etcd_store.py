"""EtcdStore beyond the shared contract: store URLs, and an etcd that is not there.
Losing members under load: tests/integration/ha."""

from __future__ import annotations

import asyncio

import pytest

from corral.store.errors import StoreUnavailable
from corral.store.etcd import EtcdStore
from corral.store.open import open_store
from tests.cluster import EtcdCluster, free_port

WAIT = 60.0  # generous: elections and reconnects on a loaded machine


@pytest.mark.parametrize("url, message", [
    ("etcd://", "names no endpoint"),
    ("etcd://127.0.0.1", "not HOST:PORT"),
    ("etcd://127.0.0.1:x", "not HOST:PORT"),
    ("etcd://https://127.0.0.1:2379", "TLS"),
    ("etcd://127.0.0.1:2379?color=red", "unknown etcd store option 'color'"),
    ("etcd://127.0.0.1:2379?timeout=0", "timeout must be more than 0"),
    ("etcd://127.0.0.1:2379?history=lots", "history must be a number"),
    ("etcd://127.0.0.1:2379?prefix=registry", "prefix must start with '/'"),
])
async def test_open_store_rejects_bad_etcd_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await open_store(url)


async def test_open_store_reads_etcd_urls(etcd: EtcdCluster) -> None:
    url = f"etcd://{etcd.local.endpoints},127.0.0.1:{free_port()}?prefix=/p1&timeout=3"
    store = await open_store(url)  # one endpoint down among several: still opens
    try:
        assert isinstance(store, EtcdStore) and store.root == "/p1"
        rev = await store.create("/k", b"v")
        assert (await store.get("/k")) is not None
        assert [kv.key for kv in (await store.list("")).items] == ["/k"]
        assert rev == await store.current_revision()
    finally:
        await store.close()


async def test_no_etcd_at_all_is_unavailable_not_a_hang() -> None:
    with pytest.raises(StoreUnavailable, match="etcd unreachable"):
        await asyncio.wait_for(EtcdStore.open(f"127.0.0.1:{free_port()}", timeout=1.0), WAIT)
