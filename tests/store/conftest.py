"""The ``store`` fixture: one fresh Store per test, for every backend in OPENERS.

To add a backend, write an opener with the signature of ``_open_sqlite`` and add
it to OPENERS; every conformance test then runs against it too. The etcd backend
runs on the module's real etcd (the ``etcd`` fixture), each store under a key
prefix of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

import pytest

from corral.store.base import Store
from corral.store.etcd import EtcdStore
from corral.store.sqlite import SqliteStore
from tests.cluster import EtcdCluster

# Events a watcher may fall behind before it is dropped. Small, so the slow-watcher
# test overflows it quickly; larger than the 1,000-watcher test's burst.
WATCH_BUFFER = 256
NO_AUTO_COMPACTION = 0.0


class StoreFactory(Protocol):
    """Opens another store of the test's backend. ``history``/``compact_interval``
    configure automatic compaction (interval 0: none)."""

    def __call__(self, *, history: int = ..., compact_interval: float = ...
                 ) -> Awaitable[Store]: ...


Opener = Callable[[pytest.FixtureRequest, Path, int, float], Awaitable[Store]]


async def _open_sqlite(request: pytest.FixtureRequest, tmp: Path, history: int,
                       compact_interval: float) -> Store:
    return await SqliteStore.open(tmp / "state.db", history=history,
                                  compact_interval=compact_interval, watch_buffer=WATCH_BUFFER)


async def _open_etcd(request: pytest.FixtureRequest, tmp: Path, history: int,
                     compact_interval: float) -> Store:
    etcd: EtcdCluster = request.getfixturevalue("etcd")
    return await EtcdStore.open(etcd.local.endpoints, root=f"/test-{uuid.uuid4().hex[:12]}",
                                history=history, compact_interval=compact_interval,
                                watch_buffer=WATCH_BUFFER)


OPENERS: dict[str, Opener] = {
    "sqlite": _open_sqlite,
    "etcd": _open_etcd,
}


@pytest.fixture(params=sorted(OPENERS))
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path
                        ) -> AsyncIterator[StoreFactory]:
    opener = OPENERS[request.param]
    opened: list[Store] = []

    async def open_store(*, history: int = 10000,
                         compact_interval: float = NO_AUTO_COMPACTION) -> Store:
        store = await opener(request, tmp_path / f"store{len(opened)}", history,
                             compact_interval)
        opened.append(store)
        return store

    try:
        yield open_store
    finally:
        for store in opened:
            await store.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    return await store_factory()


@pytest.fixture
def watch_buffer() -> int:
    return WATCH_BUFFER
