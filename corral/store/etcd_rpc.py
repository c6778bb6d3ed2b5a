"""The gRPC seam to etcd: one channel over several endpoints, deadlines, retries.

    EtcdRpc.call(method, request)
        ├─ attempt with a per-attempt deadline on the channel (round_robin over
        │  every endpoint: a dead member's subchannel is skipped)
        ├─ UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED ("leader changed",
        │  "no leader", a killed member, a stalled one): back off, try again
        └─ past the whole timeout: StoreUnavailable (the API answers 503)

The protobuf messages and stubs are aetcd's (generated from etcd's own .proto
files); aetcd's high-level client talks to one host and hides the request fields
this store needs (limit + revision on a range, compare lists in a txn), so the
store uses the stubs directly.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc  # type: ignore[import-untyped]
from aetcd import rpc  # type: ignore[import-untyped]

from corral.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

Message = Any  # a protobuf message of etcd's API (untyped)
Method = Callable[..., Awaitable[Message]]

RETRYABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE,  # connection lost, "leader changed", "no leader", "timed out"
    grpc.StatusCode.DEADLINE_EXCEEDED,  # our per-attempt deadline (a stalled member)
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # "too many requests"
    grpc.StatusCode.UNKNOWN,  # "context deadline exceeded": a read without quorum
})
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 0.5

# A member that stops answering (SIGSTOP, a partition) keeps its TCP connection
# open; keepalive pings find out. etcd refuses pings more often than every 5 s
# (--grpc-keepalive-min-time), so 5 s is the floor.
CHANNEL_OPTIONS = (
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """``h1:2379,h2:2379`` (an ``http://`` in front of each is allowed, as etcdctl
    takes them) -> [(host, port)]. Raises ValueError naming the bad part."""
    endpoints: list[tuple[str, int]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        part = part.removeprefix("http://")
        if part.startswith("https://"):
            raise ValueError(f"etcd endpoint {part!r}: TLS to etcd is not supported yet")
        host, sep, port = part.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"etcd endpoint {part!r} is not HOST:PORT")
        endpoints.append((host.strip("[]"), int(port)))
    if not endpoints:
        raise ValueError("etcd store URL names no endpoint: use etcd://host:2379[,host2:2379]")
    return endpoints


def _resolve(host: str, port: int) -> list[str]:
    try:
        ipaddress.ip_address(host)
        return [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({f"{info[4][0]}:{port}" for info in infos if info[0] == socket.AF_INET})


def channel_target(endpoints: list[tuple[str, int]]) -> str:
    """One gRPC target for every endpoint: the ipv4 resolver takes a list, and
    round_robin spreads calls over the members that are up."""
    addresses = [a for host, port in endpoints for a in _resolve(host, port)]
    if not addresses:
        raise ValueError(f"etcd endpoints {endpoints} resolve to no IPv4 address")
    scheme = "ipv6" if any(a.startswith("[") for a in addresses) else "ipv4"
    return f"{scheme}:{','.join(addresses)}"


class EtcdRpc:
    """The channel and stubs; ``call`` is a unary call with deadline and retries."""

    def __init__(self, endpoints: list[tuple[str, int]], *, timeout: float) -> None:
        self.endpoints = endpoints
        self.timeout = timeout  # a whole call, retries included
        self.attempt_timeout = max(timeout / 3, 0.5)  # one try (a stalled member's share)
        self.channel = grpc.aio.insecure_channel(channel_target(endpoints),
                                                 options=CHANNEL_OPTIONS)
        self.kv = rpc.KVStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)
        self.cluster = rpc.ClusterStub(self.channel)
        self.maintenance = rpc.MaintenanceStub(self.channel)

    async def call(self, method: Method, request: Message, *,
                   on_retry: Callable[[], None] | None = None) -> Message:
        """``method(request)``, retried while etcd is unreachable or electing, up
        to ``timeout``. ``on_retry`` runs before each repeat (a write learns that
        its first attempt may have been applied). Raises grpc.aio.AioRpcError
        OUT_OF_RANGE (a compacted or future revision: the caller's to interpret),
        else StoreUnavailable."""
        deadline = time.monotonic() + self.timeout
        backoff = FIRST_BACKOFF
        while True:
            left = deadline - time.monotonic()
            try:
                return await method(request, timeout=min(self.attempt_timeout, max(left, 0.05)))
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.OUT_OF_RANGE:
                    raise
                if err.code() not in RETRYABLE:
                    raise StoreUnavailable(f"etcd refused: {err.code().name} "
                                           f"{err.details()}") from None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(f"etcd unreachable at {self.describe()}: "
                                           f"{err.code().name} {err.details()}") from None
                log.debug("etcd call retried code=%s details=%s", err.code().name,
                          err.details())
            await asyncio.sleep(min(backoff * random.uniform(0.5, 1.0), max(left, 0)))
            backoff = min(backoff * 2, MAX_BACKOFF)
            if on_retry is not None:
                on_retry()

    def describe(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.endpoints)

    async def close(self) -> None:
        await self.channel.close()
