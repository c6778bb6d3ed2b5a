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


async def test_named_queue_is_measured_as_client_go() -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from corral.client.metrics import WorkQueueMetrics

    metrics = WorkQueueMetrics()
    queue = WorkQueue(name="demo", metrics=metrics, base_delay=0.001)
    queue.add("a")
    queue.add("b")
    queue.add("a")  # already queued: not counted again (client-go's rule)

    def sample(name: str) -> float:
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
            for s in family.samples:
                if s.name == name and s.labels.get("name") == "demo":
                    return float(s.value)
        raise AssertionError(f"no sample {name}")

    assert sample("workqueue_depth") == 2
    assert sample("workqueue_adds_total") == 2
    key = await queue.get()
    assert sample("workqueue_depth") == 1
    assert sample("workqueue_queue_duration_seconds_count") == 1
    queue.add_rate_limited(key)
    queue.done(key)
    assert sample("workqueue_work_duration_seconds_count") == 1
    assert sample("workqueue_retries_total") == 1
    unnamed = WorkQueue(metrics=metrics)
    unnamed.add("x")
    assert sample("workqueue_adds_total") == 2  # a queue without a name is not measured
    queue.add("c")
    assert sample("workqueue_depth") == 2
    queue.shutdown()  # leadership lost: this queue will never be worked on
    assert sample("workqueue_depth") == 0
