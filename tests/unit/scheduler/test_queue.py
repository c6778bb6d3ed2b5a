"""The scheduling queue: priority then creation order, back-off parking, wake-ups."""

from __future__ import annotations

import asyncio

import pytest

from corral.scheduler.queue import QueueClosed, SchedulingQueue


async def drain(queue: SchedulingQueue) -> list[str]:
    keys = []
    while len(queue):
        keys.append(await queue.pop())
    return keys


async def test_pops_by_priority_then_creation_time() -> None:
    queue = SchedulingQueue()
    queue.add("ns/late-batch", 1000, "2024-01-01T00:00:05Z")
    queue.add("ns/early-free", 0, "2024-01-01T00:00:01Z")
    queue.add("ns/prod", 100_000, "2024-01-01T00:00:09Z")
    queue.add("ns/early-batch", 1000, "2024-01-01T00:00:02Z")
    assert await drain(queue) == ["ns/prod", "ns/early-batch", "ns/late-batch", "ns/early-free"]


async def test_a_key_is_queued_once() -> None:
    queue = SchedulingQueue()
    queue.add("ns/a", 0, "t")
    queue.add("ns/a", 0, "t")
    assert await drain(queue) == ["ns/a"]


async def test_parked_pods_wait_for_back_off_or_a_cluster_change() -> None:
    queue = SchedulingQueue(initial_backoff=3600, max_backoff=3600)
    queue.add("ns/a", 0, "t")
    assert await queue.pop() == "ns/a"
    queue.park("ns/a")
    assert len(queue) == 0 and queue.parked == 1
    queue.move_all_to_active()
    assert await asyncio.wait_for(queue.pop(), 5) == "ns/a"


async def test_back_off_doubles_up_to_the_cap() -> None:
    queue = SchedulingQueue(initial_backoff=1, max_backoff=10)
    assert [queue.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_back_off_expiry_requeues() -> None:
    queue = SchedulingQueue(initial_backoff=0.001, max_backoff=0.001)
    queue.add("ns/a", 0, "t")
    await queue.pop()
    queue.park("ns/a")
    assert await asyncio.wait_for(queue.pop(), 5) == "ns/a"


async def test_removed_keys_never_come_back() -> None:
    queue = SchedulingQueue(initial_backoff=0.001, max_backoff=0.001)
    queue.add("ns/gone", 0, "t1")
    queue.add("ns/kept", 0, "t2")
    queue.remove("ns/gone")
    queue.park("ns/gone")  # a late failure report for a pod that is gone
    queue.requeue("ns/gone")
    assert await drain(queue) == ["ns/kept"]


async def test_close_wakes_a_waiting_pop() -> None:
    queue = SchedulingQueue()
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    queue.close()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(waiter, 5)
