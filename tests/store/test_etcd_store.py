"""EtcdStore beyond the shared contract: store URLs, an etcd that is not there, and
a real 3-member etcd losing members (its leader too) under a stream of writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from corral.store.base import Event
from corral.store.errors import StoreUnavailable
from corral.store.etcd import EtcdStore
from corral.store.open import open_store
from tests.cluster import EtcdCluster, free_port
from tests.poll import eventually

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


# -- a 3-member etcd losing members ------------------------------------------------------


@pytest.fixture(scope="module")
def etcd3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd3"), size=3)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _restart_dead(cluster: EtcdCluster) -> None:
    dead = [name for name in cluster.names if name not in cluster.procs]
    for name in dead:
        cluster.start_member(name)
    cluster.wait_healthy(WAIT, dead)


class Writers:
    """Tasks creating keys until stopped; what etcd acknowledged, with revisions."""

    def __init__(self, store: EtcdStore, prefix: str, count: int = 8) -> None:
        self.store = store
        self.acked: dict[str, int] = {}
        self.unavailable = 0
        self._stop = False
        self._tasks = [asyncio.create_task(self._write(f"{prefix}{w}/")) for w in range(count)]

    async def _write(self, prefix: str) -> None:
        i = 0
        while not self._stop:
            key = f"{prefix}{i}"
            try:
                self.acked[key] = await self.store.create(key, key.encode())
            except StoreUnavailable:
                self.unavailable += 1  # not acknowledged: it may or may not exist
            i += 1

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks)


async def test_killing_the_etcd_leader_loses_no_acknowledged_write(etcd3: EtcdCluster) -> None:
    store = await EtcdStore.open(etcd3.local.endpoints, root="/leader-kill", timeout=10.0,
                                 compact_interval=0.0)
    watch = store.watch("/w/")  # a follower watch: it must go on across the kill
    writers = Writers(store, "/w/")
    try:
        await eventually(lambda: len(writers.acked) >= 100, timeout=WAIT)
        leader = etcd3.leader()
        etcd3.kill(leader)
        killed_at = len(writers.acked)
        # writes resume
        await eventually(lambda: len(writers.acked) >= killed_at + 100, timeout=WAIT)
        assert etcd3.leader() != leader
    finally:
        await writers.stop()
        _restart_dead(etcd3)
    try:
        for key, revision in writers.acked.items():
            kv = await store.get(key)
            assert kv is not None and kv.mod_revision == revision, key
        last = max(writers.acked.values())
        seen: list[Event] = []

        async def watched_to_last() -> bool:
            seen.append(await anext(watch))
            return seen[-1].revision >= last

        await eventually(watched_to_last, timeout=WAIT)
        revisions = [ev.revision for ev in seen]
        assert revisions == sorted(set(revisions))  # in order, none twice
        assert set(writers.acked.values()) <= set(revisions)  # no acked write missed
    finally:
        await store.close()


async def test_without_quorum_calls_fail_in_bounded_time_then_recover(
        etcd3: EtcdCluster) -> None:
    store = await EtcdStore.open(etcd3.local.endpoints, root="/quorum", timeout=2.0,
                                 compact_interval=0.0)
    try:
        await store.create("/before", b"1")
        for name in etcd3.names[:2]:
            etcd3.kill(name)
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.create("/during", b"1"), WAIT)
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.get("/before"), WAIT)  # linearizable: needs quorum
        _restart_dead(etcd3)

        async def writable() -> bool:
            try:
                await store.create("/after", b"1")
            except StoreUnavailable:
                return False
            return True

        await eventually(writable, timeout=WAIT)
        assert (await store.get("/before")) is not None
    finally:
        _restart_dead(etcd3)
        await store.close()

