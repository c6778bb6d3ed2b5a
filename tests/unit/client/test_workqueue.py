"""WorkQueue: deduplication, one holder per key, re-queue after done, back-off, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from corral.client.workqueue import ShutDown, WorkQueue


async def test_dedup_and_fifo() -> None:
    q = WorkQueue()
    for key in ("a", "b", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_added_while_processing_comes_back_after_done() -> None:
    q = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first holds it
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"


async def test_done_without_re_add_does_not_requeue() -> None:
    q = WorkQueue()
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0


async def test_get_waits_for_add() -> None:
    q = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 5) == "x"


async def test_backoff_grows_exponentially_and_forget_resets() -> None:
    q = WorkQueue(base_delay=0.01, max_delay=0.05)
    assert [q.backoff_for(n) for n in range(5)] == [0.01, 0.02, 0.04, 0.05, 0.05]
    q.add_rate_limited("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 2
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_rate_limited_key_arrives_later() -> None:
    q = WorkQueue(base_delay=0.02)
    q.add_rate_limited("k")
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 5) == "k"


async def test_add_after_keeps_the_earlier_deadline() -> None:
    q = WorkQueue()
    q.add_after("k", 0.01)
    q.add_after("k", 1000)
    assert await asyncio.wait_for(q.get(), 5) == "k"


async def test_shutdown_wakes_getters_and_drops_pending() -> None:
    q = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    q.add_after("late", 1000)
    await asyncio.sleep(0)
    q.shutdown()
    for g in getters:
        with pytest.raises(ShutDown):
            await asyncio.wait_for(g, 5)
    q.add("x")
    with pytest.raises(ShutDown):
        await q.get()
