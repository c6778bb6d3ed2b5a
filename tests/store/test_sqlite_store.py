"""SqliteStore behaviour beyond the shared contract: store URLs, and watchers
that let go of their subscription however they end."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.store.open import open_store
from corral.store.sqlite import SqliteStore


async def test_open_store_parses_sqlite_urls(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dir" / "state.db"
    store = await open_store(f"sqlite://{db}")
    try:
        assert isinstance(store, SqliteStore) and store.path == db
        assert await store.create("/k", b"v") == 1
    finally:
        await store.close()
    assert db.exists()


@pytest.mark.parametrize("url", ["nosuch:///x", "/just/a/path", "sqlite://"])
async def test_open_store_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        await open_store(url)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "state.db", compact_interval=0.0)
    try:
        yield store
    finally:
        await store.close()


def _subscribers(store: SqliteStore) -> int:
    return store._broadcaster.subscriber_count  # the subject of these tests


async def test_watch_unsubscribes_on_aclose(sqlite_store: SqliteStore) -> None:
    watch = sqlite_store.watch("/a/")
    assert _subscribers(sqlite_store) == 1
    await watch.aclose()
    assert _subscribers(sqlite_store) == 0


async def test_watch_unsubscribes_when_its_consumer_is_cancelled(
        sqlite_store: SqliteStore) -> None:
    watch = sqlite_store.watch("/a/")

    async def consume() -> None:
        async for _ in watch:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _subscribers(sqlite_store) == 0


async def test_abandoned_watch_unsubscribes_when_collected(sqlite_store: SqliteStore) -> None:
    watch = sqlite_store.watch("/a/")
    assert _subscribers(sqlite_store) == 1
    del watch
    gc.collect()
    assert _subscribers(sqlite_store) == 0


async def test_compacting_the_future_is_refused(sqlite_store: SqliteStore) -> None:
    rev = await sqlite_store.create("/k", b"v")
    with pytest.raises(ValueError):
        await sqlite_store.compact(rev + 1)


async def test_url_options_set_history_and_reject_unknown(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/o.db?history=5&compact_interval=0.02")
    try:
        rev = await store.create("/k", b"0")
        for i in range(30):
            rev = await store.update("/k", str(i).encode(), rev)
        for _ in range(200):
            if await store.compacted_revision() >= rev - 5:
                break
            await asyncio.sleep(0.02)
        assert await store.compacted_revision() >= rev - 5
    finally:
        await store.close()
    for bad in ("bogus=1", "history=abc", "history=-1"):
        with pytest.raises(ValueError):
            await open_store(f"sqlite:///{tmp_path}/o.db?{bad}")
