"""The fairness rules on their own: lanes by caller, round-robin between flows,
429 past a flow's queue, long-running requests seated nowhere."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from corral.api.errors import TooManyRequests
from corral.api.fairness import (
    FairnessMiddleware,
    Lane,
    LaneConfig,
    classify,
    is_long_running,
    lanes_for,
)


@dataclass(frozen=True)
class _User:
    name: str
    groups: tuple[str, ...] = ()


def _scope(path: str = "/api/v1/pods", query: bytes = b"", agent: bytes = b"kubectl/1.32",
           user: _User | None = None, method: str = "GET", **extra: object) -> dict[str, object]:
    return {"type": "http", "path": path, "query_string": query, "method": method,
            "headers": [(b"user-agent", agent)], "user": user or _User("admin"), **extra}


LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/corral-scheduler"
NODE_LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"


def test_lanes_by_caller() -> None:
    assert classify(_scope())[0] == "global"
    assert classify(_scope(agent=b"corral-agent/node-1"))[0] == "nodes"
    assert classify(_scope(user=_User("system:node:n1", ("system:nodes",))))[0] == "nodes"
    assert classify(_scope(user=_User("system:kube-scheduler")))[0] == "system"
    assert classify(_scope(extensions={"corral.in_process": {}}))[0] == "system"
    assert classify(_scope())[1] != classify(_scope(agent=b"curl/8"))[1]


def test_leases_of_leaders_and_nodes_have_lanes_of_their_own() -> None:
    in_process = {"extensions": {"corral.in_process": {}}}
    assert classify(_scope(LEASE, **in_process))[0] == "leader-election"
    assert classify(_scope(LEASE, user=_User("system:kube-scheduler")))[0] == "leader-election"
    assert classify(_scope(NODE_LEASE, agent=b"corral-agent/n1"))[0] == "node-high"
    node = _User("system:node:n1", ("system:nodes",))
    assert classify(_scope(NODE_LEASE, user=node))[0] == "node-high"
    assert classify(_scope(LEASE))[0] == "global"  # kubectl get lease: no priority
    assert classify(_scope("/apis/apps/v1/deployments", **in_process))[0] == "system"
    assert set(lanes_for()) >= {"leader-election", "node-high"}
    assert sum(cfg.seats for cfg in lanes_for(128).values()) == 128


async def test_a_lease_renewal_is_served_while_its_own_client_floods_the_system_lane() -> None:
    """The controller manager's 5,000 pod creates fill the system lane and its own
    flow's queue; its Lease renewal (same user, same User-Agent) still gets a seat
    at once instead of waiting behind them (and, past the wait, a 429)."""
    gate = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if "/leases/" not in scope["path"]:
            await gate.wait()  # bulk work that holds its seat
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    lanes = {name: LaneConfig(seats=2, queue_length=4, wait=30.0) for name in lanes_for()}
    fairness = FairnessMiddleware(app, lanes)
    manager = {"user": _User("system:kube-controller-manager"),
               "agent": b"corral-controller-manager", "method": "POST"}
    bulk = [asyncio.create_task(_call(fairness, _scope("/api/v1/namespaces/d/pods", **manager)))
            for _ in range(6)]  # 2 seated, 4 queued: the flow's queue is full
    try:
        await asyncio.sleep(0)
        assert fairness.lanes["system"].executing == 2
        renewal = await asyncio.wait_for(_call(fairness, _scope(LEASE, **manager)), timeout=30)
        assert renewal == 200 and not any(task.done() for task in bulk)
    finally:
        gate.set()
    assert await asyncio.gather(*bulk) == [200] * 6


async def _call(app: FairnessMiddleware, scope: dict[str, object]) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


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
