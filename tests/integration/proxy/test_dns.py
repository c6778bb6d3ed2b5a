"""DnsServer answering real UDP and TCP queries from dnslib's client on loopback."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord  # type: ignore[import-untyped]

from corral.proxy.dns import DnsServer
from corral.proxy.model import ServiceDnsRecord

pytestmark = pytest.mark.timeout(60)

RECORDS = [
    ServiceDnsRecord("default", "web", "127.100.0.10"),
    ServiceDnsRecord("prod", "db", None, ("127.0.1.2", "127.0.1.3")),  # headless
    ServiceDnsRecord("prod", "empty", None, ()),  # headless, nothing ready
]


def dns_ip() -> str:
    return f"127.0.53.{random.randint(1, 254)}"


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    dns = DnsServer(dns_ip(), 0)
    dns.update(RECORDS)
    await dns.start()
    yield dns
    await dns.close()


async def query(server: DnsServer, name: str, qtype: str = "A",
                tcp: bool = False) -> DNSRecord:
    question = DNSRecord.question(name, qtype)
    raw = await asyncio.to_thread(question.send, server.host, server.port, tcp=tcp, timeout=5)
    reply = DNSRecord.parse(raw)
    assert reply.header.id == question.header.id
    return reply


def a_records(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)


@pytest.mark.parametrize("name", ["web.default.svc.cluster.local", "web.default.svc",
                                  "web.default", "WEB.Default.svc.cluster.local."])
async def test_service_names_resolve_to_the_cluster_ip(server: DnsServer, name: str) -> None:
    reply = await query(server, name)
    assert reply.header.rcode == RCODE.NOERROR
    assert a_records(reply) == ["127.100.0.10"]


async def test_tcp_query_gets_the_same_answer(server: DnsServer) -> None:
    reply = await query(server, "web.default.svc.cluster.local", tcp=True)
    assert a_records(reply) == ["127.100.0.10"]


async def test_headless_service_resolves_to_ready_endpoints(server: DnsServer) -> None:
    assert a_records(await query(server, "db.prod.svc.cluster.local")) == [
        "127.0.1.2", "127.0.1.3"]


@pytest.mark.parametrize("name", ["nope.default.svc.cluster.local", "empty.prod.svc.cluster.local",
                                  "x.y.z.cluster.local", "nope.default"])
async def test_unknown_cluster_names_are_nxdomain(server: DnsServer, name: str) -> None:
    reply = await query(server, name)
    assert reply.header.rcode == RCODE.NXDOMAIN and reply.header.aa == 1


async def test_other_types_of_a_known_name_have_no_data(server: DnsServer) -> None:
    reply = await query(server, "web.default.svc.cluster.local", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []


async def test_outside_names_are_refused_without_upstreams(server: DnsServer) -> None:
    reply = await query(server, "example.com")
    assert reply.header.rcode == RCODE.REFUSED


async def test_update_replaces_the_records(server: DnsServer) -> None:
    server.update([ServiceDnsRecord("default", "web", "127.100.0.99")])
    assert a_records(await query(server, "web.default")) == ["127.100.0.99"]
    assert (await query(server, "db.prod")).header.rcode == RCODE.REFUSED  # namespace gone


class _FakeUpstream(asyncio.DatagramProtocol):
    """Stands in for the host's resolver: every A query is 192.0.2.7."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = DNSRecord.parse(data)
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.7"), ttl=60))
        self.transport.sendto(reply.pack(), addr)


async def test_outside_names_are_forwarded_to_upstreams() -> None:
    loop = asyncio.get_running_loop()
    upstream, _ = await loop.create_datagram_endpoint(_FakeUpstream,
                                                      local_addr=("127.0.0.1", 0))
    upstream_port = upstream.get_extra_info("sockname")[1]
    dns = DnsServer(dns_ip(), 0, upstreams=[("127.0.0.1", upstream_port)])
    dns.update(RECORDS)
    try:
        await dns.start()
        assert a_records(await query(dns, "example.com")) == ["192.0.2.7"]
        assert a_records(await query(dns, "web.default")) == ["127.100.0.10"]
    finally:
        await dns.close()
        upstream.close()


async def test_dead_upstream_gives_servfail() -> None:
    dns = DnsServer(dns_ip(), 0, upstreams=[("127.0.0.1", 9)], upstream_timeout=0.2)
    try:
        await dns.start()
        assert (await query(dns, "example.com")).header.rcode == RCODE.SERVFAIL
    finally:
        await dns.close()


async def test_large_answer_is_truncated_on_udp_and_whole_on_tcp(server: DnsServer) -> None:
    many = tuple(f"127.0.1.{n}" for n in range(1, 61))
    server.update([ServiceDnsRecord("prod", "big", None, many)])
    udp = await query(server, "big.prod.svc.cluster.local")
    assert udp.header.tc == 1
    tcp = await query(server, "big.prod.svc.cluster.local", tcp=True)
    assert a_records(tcp) == sorted(many)
