"""The fairness rules on their own: lanes by caller, round-robin between flows,
429 past a flow's queue, long-running requests seated nowhere."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from corral.api.errors import TooManyRequests
from corral.api.fairness import Lane, LaneConfig, classify, is_long_running


@dataclass(frozen=True)
class _User:
    name: str
    groups: tuple[str, ...] = ()


def _scope(path: str = "/api/v1/pods", query: bytes = b"", agent: bytes = b"kubectl/1.32",
           user: _User | None = None, **extra: object) -> dict[str, object]:
    return {"type": "http", "path": path, "query_string": query,
            "headers": [(b"user-agent", agent)], "user": user or _User("admin"), **extra}


def test_lanes_by_caller() -> None:
    assert classify(_scope())[0] == "global"
    assert classify(_scope(agent=b"corral-agent/node-1"))[0] == "nodes"
    assert classify(_scope(user=_User("system:node:n1", ("system:nodes",))))[0] == "nodes"
    assert classify(_scope(user=_User("system:kube-scheduler")))[0] == "system"
    assert classify(_scope(extensions={"corral.in_process": {}}))[0] == "system"
    assert classify(_scope())[1] != classify(_scope(agent=b"curl/8"))[1]


def test_long_running_requests_hold_no_seat() -> None:
    assert is_long_running(_scope(query=b"watch=true"))
    assert is_long_running(_scope(path="/api/v1/namespaces/a/pods/p/log", query=b"follow=true"))
    assert is_long_running(_scope(path="/readyz"))
    assert is_long_running({"type": "websocket", "path": "/x"})
    assert not is_long_running(_scope(query=b"limit=5"))


async def test_seats_go_round_robin_between_flows() -> None:
    lane = Lane("global", LaneConfig(seats=1, queue_length=10, wait=10.0))
    order: list[str] = []
    gate = asyncio.Event()

    async def request(flow: str, tag: str) -> None:
        async with lane.seat(flow):
            order.append(tag)
            await gate.wait()

    first = asyncio.create_task(request("flood", "flood-0"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(request("flood", f"flood-{i}")) for i in range(1, 4)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(request("kubectl", "kubectl")))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *tasks)
    # The flood's second request was queued first; kubectl is next, not last.
    assert order[:3] == ["flood-0", "flood-1", "kubectl"]
    assert lane.executing == 0 and not lane.queues


async def test_past_its_queue_a_flow_gets_429() -> None:
    lane = Lane("global", LaneConfig(seats=1, queue_length=2, wait=10.0))
    gate = asyncio.Event()

    async def request() -> None:
        async with lane.seat("flood"):
            await gate.wait()

    running = [asyncio.create_task(request()) for _ in range(3)]  # 1 seated, 2 queued
    await asyncio.sleep(0)
    with pytest.raises(TooManyRequests) as refused:
        async with lane.seat("flood"):
            pass
    assert refused.value.retry_after == 1
    gate.set()
    await asyncio.gather(*running)
    assert lane.executing == 0
