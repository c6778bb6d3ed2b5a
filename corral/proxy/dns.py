"""The node's DNS server: Service names to addresses, over UDP and TCP.

    query ──▶ ClusterZone.lookup(name)
               ├─ a Service name      → A records (clusterIP, or headless: ready pod IPs)
               ├─ <host>.<headless svc> → that pod's IP (a StatefulSet's web-0.web)
               ├─ unknown, but ours   → NXDOMAIN (authoritative)
               └─ not a cluster name  → forwarded to the upstreams, or REFUSED if none

Names answered: `<svc>.<ns>.svc.cluster.local`, `<svc>.<ns>.svc` and `<svc>.<ns>`
(the last only for a namespace that has Services, so `example.com` stays
someone else's); and for a ready pod whose hostname and subdomain put it under a
headless Service, `<hostname>.<svc>.<ns>.svc[.cluster.local]`, as Kubernetes' DNS. Messages are parsed and built with dnslib; the sockets are
asyncio's, so the server lives in the agent's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSRecord  # type: ignore[import-untyped]

from corral.proxy.model import ServiceDnsRecord

log = logging.getLogger(__name__)

DEFAULT_DOMAIN = "cluster.local"
DEFAULT_TTL = 5  # seconds: short, because endpoints move
UDP_PAYLOAD_LIMIT = 512  # without EDNS; larger answers are truncated (the client retries on TCP)
Upstream = tuple[str, int]


class ClusterZone:
    """Which names are the cluster's and what they resolve to. No I/O."""

    def __init__(self, domain: str = DEFAULT_DOMAIN) -> None:
        self.domain = domain.lower().strip(".")
        self._addresses: dict[tuple[str, str], tuple[str, ...]] = {}
        self._hosts: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._namespaces: set[str] = set()

    def update(self, records: Iterable[ServiceDnsRecord]) -> None:
        """Replace every record at once."""
        records = list(records)
        self._addresses = {(r.namespace.lower(), r.name.lower()): r.addresses for r in records}
        hosts: dict[tuple[str, str, str], list[str]] = {}
        for r in records:
            if r.headless:
                for host, ip in r.hosts:
                    hosts.setdefault((r.namespace.lower(), r.name.lower(), host), []).append(ip)
        self._hosts = {key: tuple(dict.fromkeys(ips)) for key, ips in hosts.items()}
        self._namespaces = {namespace for namespace, _ in self._addresses}

    def lookup(self, name: str) -> tuple[str, ...] | None:
        """A cluster name's addresses (empty: no such name → NXDOMAIN); None if not ours."""
        labels = name.lower().rstrip(".").split(".")
        zone = self.domain.split(".")
        if labels[-len(zone):] == zone:
            return self._service(labels[: -len(zone)], with_svc=True)
        if len(labels) in (3, 4) and labels[-1] == "svc":
            return self._service(labels, with_svc=True)
        if len(labels) == 2 and labels[1] in self._namespaces:
            return self._service(labels, with_svc=False)
        return None

    def _service(self, labels: list[str], with_svc: bool) -> tuple[str, ...]:
        if with_svc and len(labels) == 4 and labels[3] == "svc":  # <host>.<svc>.<ns>.svc
            return self._hosts.get((labels[2], labels[1], labels[0]), ())
        expected = 3 if with_svc else 2
        if len(labels) != expected or (with_svc and labels[2] != "svc"):
            return ()
        return self._addresses.get((labels[1], labels[0]), ())


def answer(zone: ClusterZone, request: DNSRecord, ttl: int = DEFAULT_TTL) -> DNSRecord | None:
    """The reply to a query for a cluster name; None when the name is not ours."""
    if not request.questions:
        reply = request.reply()
        reply.header.rcode = RCODE.FORMERR
        return reply
    question = request.questions[0]
    addresses = zone.lookup(str(question.qname))
    if addresses is None:
        return None
    reply = request.reply()
    reply.header.aa = 1
    if not addresses:
        reply.header.rcode = RCODE.NXDOMAIN
    elif question.qtype in (QTYPE.A, QTYPE.ANY):
        for ip in addresses:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=ttl))
    # Any other type of an existing name: NOERROR with no records (NODATA).
    return reply


def refused(request: DNSRecord, code: int = RCODE.REFUSED) -> DNSRecord:
    reply = request.reply()
    reply.header.rcode = code
    return reply


def upstreams_from_resolv_conf(path: str | Path = "/etc/resolv.conf") -> list[Upstream]:
    """The `nameserver` lines of a resolv.conf, as (ip, 53)."""
    servers: list[Upstream] = []
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append((fields[1], 53))
    return servers


class _UpstreamReply(asyncio.DatagramProtocol):
    def __init__(self, query_id: int) -> None:
        self.query_id = query_id
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        answers_us = len(data) >= 2 and struct.unpack("!H", data[:2])[0] == self.query_id
        if answers_us and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def forward(query: bytes, upstream: Upstream, timeout: float) -> bytes:
    """One UDP exchange with an upstream server (raises OSError or TimeoutError)."""
    loop = asyncio.get_running_loop()
    query_id = struct.unpack("!H", query[:2])[0]
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _UpstreamReply(query_id), remote_addr=upstream)
    try:
        transport.sendto(query)
        return await asyncio.wait_for(protocol.reply, timeout)
    finally:
        transport.close()


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.server._spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str | object, int]) -> None:
        response = await self.server.respond(data, limit=UDP_PAYLOAD_LIMIT)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)


class DnsServer:
    """Serves a ClusterZone on host:port, UDP and TCP (port 0: one free port for both)."""

    def __init__(self, host: str, port: int = 53, *, domain: str = DEFAULT_DOMAIN,
                 upstreams: Sequence[Upstream] = (), ttl: int = DEFAULT_TTL,
                 upstream_timeout: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.zone = ClusterZone(domain)
        self.upstreams = list(upstreams)
        self.ttl = ttl
        self.upstream_timeout = upstream_timeout
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def update(self, records: Iterable[ServiceDnsRecord]) -> None:
        self.zone.update(records)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        udp_sock, tcp_sock = _bind_pair(self.host, self.port)
        self.port = udp_sock.getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpServer(self),
                                                           sock=udp_sock)
        self._udp = transport
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_sock)
        log.info("dns listening address=%s:%d domain=%s upstreams=%s", self.host, self.port,
                 self.zone.domain, self.upstreams)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()

    async def respond(self, data: bytes, limit: int | None = None) -> bytes | None:
        """The wire reply to a wire query; None for a message too broken to answer."""
        try:
            request = DNSRecord.parse(data)
        except DNSError:
            return None
        reply = answer(self.zone, request, self.ttl)
        if reply is None:
            return await self._forward(request, data)
        packed: bytes = reply.pack()
        if limit is not None and len(packed) > limit:
            packed = reply.truncate().pack()
        return packed

    async def _forward(self, request: DNSRecord, data: bytes) -> bytes:
        if not self.upstreams:
            return bytes(refused(request).pack())
        for upstream in self.upstreams:
            try:
                return await forward(data, upstream, self.upstream_timeout)
            except (OSError, TimeoutError) as err:
                log.info("dns upstream failed upstream=%s:%d error=%r", *upstream, err)
        return bytes(refused(request, RCODE.SERVFAIL).pack())

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
                response = await self.respond(await reader.readexactly(length))
                if response is None:
                    break
                writer.write(struct.pack("!H", len(response)) + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _bind_pair(host: str, port: int, tries: int = 20) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same host:port (a free one when port is 0)."""
    for _ in range(tries):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind((host, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            if port != 0:
                raise
            continue
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise OSError(f"no free port on {host} for both UDP and TCP")
