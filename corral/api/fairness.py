"""A basic API Priority and Fairness: lanes of seats, fair queues per client.

    request ─► long-running (watch, logs -f, exec, proxy) or health? ── yes ──► app
                  │ no
                  ▼
             lane by identity:  nodes    (agents)
                                system   (scheduler, controllers)
                                global   (everyone else: kubectl, scripts)
               and, for Leases: leader-election (the system components' and the
                                master's own), node-high (the agents' heartbeats)
                  │
             a free seat in the lane and nobody waiting? ── yes ──► app
                  │ no
                  ▼
             wait in the flow's own queue (flow = user + User-Agent); seats freed
             go round-robin over the flows waiting, so a client sending 200
             requests at once waits behind itself, not in front of everyone;
             queue full or waited too long → 429 TooManyRequests, Retry-After

As in kube-apiserver, a lane cannot borrow another's seats: agents heartbeat and
controllers reconcile while a script floods the global lane. Leases get lanes of
their own, as kube-apiserver's leader-election and node-high priority levels
give them: a leader's renewal (every 3/8 s in `corral master`, given up after
2.25 s) and a node's heartbeat must not queue behind the bulk work of their own
client — 5,000 pod creates of the ReplicaSet controller, or an agent's pod
status writes — or the leader is deposed and the node marked NotReady because
the cluster is busy. A lane is chosen by
the caller's groups (system:nodes) or user (system:kube-scheduler, ...), by the
in-process transport (the master's own components), and otherwise, since every
corral component still signs in with the admin token, by the User-Agent corral's
own client sends (corral-agent/NODE, corral-scheduler, corral-controller-manager).
The admin token may do anything anyway: claiming a lane is no escalation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.errors import TooManyRequests
from corral.api.handlers.responses import status_response

IN_PROCESS = "corral.in_process"  # ASGI extension the in-process transport sets
RETRY_AFTER = 1  # seconds, as kube-apiserver answers a rejected request
_LONG_RUNNING_SUFFIXES = ("/log", "/exec", "/attach", "/portforward")
_OPEN = ("/healthz", "/livez", "/readyz", "/version", "/metrics")
_SYSTEM_USERS = ("system:kube-scheduler", "system:kube-controller-manager",
                 "system:corral-mesos-master")
_SYSTEM_AGENTS = (b"corral-scheduler", b"corral-controller-manager", b"corral-controllers")
_LEASES = "/apis/coordination.k8s.io/"


@dataclass(frozen=True)
class LaneConfig:
    seats: int  # requests of the lane executing at once
    queue_length: int  # requests one flow may have waiting
    wait: float  # seconds a request may wait for a seat


MAX_REQUESTS_INFLIGHT = 128  # kube-apiserver's --max-requests-inflight, split in lanes


def lanes_for(total: int = MAX_REQUESTS_INFLIGHT) -> dict[str, LaneConfig]:
    """Seats per lane out of ``total``: a quarter to agents, half to the system
    components (the garbage collector deletes in bursts), an eighth to everyone
    else, a sixteenth each to the Leases of leaders and of nodes; each flow may
    queue twice its lane's seats (the system lane's, eight times). One event loop runs every
    seat: fewer busy seats keep its turns short, so accepting connections, TLS
    handshakes and the other lanes still get theirs while a lane is flooded
    (64 global seats let a flood delay handshakes past kubectl's 10 s limit)."""
    def lane(seats: int, queue: int) -> LaneConfig:
        return LaneConfig(seats=max(seats, 1), queue_length=max(queue, 2), wait=10.0)

    return {
        "nodes": lane(total // 4, total // 2),
        "system": lane(total // 2, 4 * total),
        "global": lane(total // 8, total // 4),
        "leader-election": lane(total // 16, total // 8),
        "node-high": lane(total // 16, total // 8),
    }


@dataclass
class Lane:
    name: str
    config: LaneConfig
    executing: int = 0
    # flow → its waiters, in the order the flows started waiting (round-robin)
    queues: OrderedDict[str, deque[asyncio.Future[None]]] = field(default_factory=OrderedDict)
    rejected: int = 0

    @contextlib.asynccontextmanager
    async def seat(self, flow: str) -> AsyncIterator[None]:
        if self.executing < self.config.seats and not self.queues:
            self.executing += 1
        else:
            await self._wait(flow)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, flow: str) -> None:
        queue = self.queues.get(flow)
        if queue is None:
            queue = self.queues[flow] = deque()
        if len(queue) >= self.config.queue_length:
            self._forget_if_empty(flow)
            raise self._reject()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            # Returns normally when the seat is granted even as the wait ends.
            await asyncio.wait_for(waiter, self.config.wait)
        except BaseException as err:  # timed out, or the client went away
            _discard(queue, waiter)
            self._forget_if_empty(flow)
            if isinstance(err, TimeoutError):
                raise self._reject() from None
            raise

    def _release(self) -> None:
        """A seat is free: hand it to the next flow in turn, or put it back."""
        while self.queues:
            flow, queue = next(iter(self.queues.items()))
            waiter = queue.popleft()
            if queue:
                self.queues.move_to_end(flow)  # this flow's next waiter goes last
            else:
                del self.queues[flow]
            if not waiter.done():
                waiter.set_result(None)  # the seat passes on: executing stays
                return
        self.executing -= 1

    def _forget_if_empty(self, flow: str) -> None:
        queue = self.queues.get(flow)
        if queue is not None and not queue:
            del self.queues[flow]

    def _reject(self) -> TooManyRequests:
        self.rejected += 1
        return TooManyRequests("Too many requests, please try again later.",
                               retry_after=RETRY_AFTER)


def _discard(queue: deque[asyncio.Future[None]], waiter: asyncio.Future[None]) -> None:
    with contextlib.suppress(ValueError):
        queue.remove(waiter)


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return b""


def is_long_running(scope: Scope) -> bool:
    """Requests that stay open: they hold no seat, as kube-apiserver's
    long-running requests do not."""
    if scope["type"] != "http":
        return True
    path: str = scope["path"]
    if path.startswith(_OPEN) or "/proxy" in path:
        return True
    if path.endswith(_LONG_RUNNING_SUFFIXES):
        return True
    query: bytes = scope.get("query_string", b"")
    return b"watch=true" in query or b"watch=1" in query or b"follow=true" in query


def classify(scope: Scope) -> tuple[str, str]:
    """(lane, flow) of a request."""
    user = scope.get("user")
    name = getattr(user, "name", "") or "system:anonymous"
    agent = _header(scope, b"user-agent")
    flow = f"{name}|{agent.decode('latin-1')}"
    lane = _caller_lane(scope, name, agent)
    if lane != "global" and _is_lease(scope["path"]):
        return ("node-high" if lane == "nodes" else "leader-election"), flow
    return lane, flow


def _caller_lane(scope: Scope, name: str, agent: bytes) -> str:
    groups = getattr(scope.get("user"), "groups", ()) or ()
    if scope.get("extensions", {}).get(IN_PROCESS) is not None:
        return "system"
    if "system:nodes" in groups or name.startswith("system:node:"):
        return "nodes"
    if name in _SYSTEM_USERS:
        return "system"
    if agent.startswith(b"corral-agent/"):
        return "nodes"
    if agent.startswith(_SYSTEM_AGENTS):
        return "system"
    return "global"


def _is_lease(path: str) -> bool:
    return path.startswith(_LEASES) and "/leases" in path


class FairnessMiddleware:
    """Seats requests by lane and flow (see the module docstring); pure ASGI."""

    def __init__(self, app: ASGIApp, lanes: dict[str, LaneConfig] | None = None) -> None:
        self.app = app
        self.lanes = {name: Lane(name, cfg) for name, cfg in (lanes or lanes_for()).items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_long_running(scope):
            await self.app(scope, receive, send)
            return
        lane_name, flow = classify(scope)
        lane = self.lanes[lane_name]
        try:
            async with lane.seat(flow):
                await self.app(scope, receive, send)
        except TooManyRequests as err:  # only the seat raises it: the app answers its own
            await status_response(err)(scope, receive, send)
