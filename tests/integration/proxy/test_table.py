"""ProxyTable with real sockets on loopback: three named backends behind a clusterIP."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from corral.proxy.model import Algorithm, Backend, ClientIPAffinity, ServicePortKey
from corral.proxy.model import ServiceProxySpec as Spec
from corral.proxy.table import ProxyTable
from tests.integration.proxy.backends import (
    SERVICE_PORT,
    NamedBackend,
    http_get,
    random_cluster_ip,
    random_node_ip,
    random_node_port,
    refused_port,
    started,
)
from tests.poll import eventually

KEY = ServicePortKey("default", "web", "http")
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def backends() -> AsyncIterator[list[NamedBackend]]:
    servers = await started("web-a", "web-b", "web-c")
    yield servers
    await asyncio.gather(*(s.close() for s in servers))


@pytest.fixture
async def table() -> AsyncIterator[ProxyTable]:
    proxy = ProxyTable(node_ip=random_node_ip(), connect_timeout=0.5)
    yield proxy
    await proxy.close()


def ready(servers: list[NamedBackend]) -> list[Backend]:
    return [s.backend() for s in servers]


async def names(host: str, port: int, count: int) -> Counter[str]:
    return Counter([await http_get(host, port) for _ in range(count)])


async def test_round_robin_spreads_evenly(table: ProxyTable,
                                          backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: ready(backends)})
    assert await names(ip, SERVICE_PORT, 30) == {"web-a": 10, "web-b": 10, "web-c": 10}


async def test_node_port_reaches_every_backend(table: ProxyTable,
                                               backends: list[NamedBackend]) -> None:
    ip, node_port = random_cluster_ip(), random_node_port()
    await table.apply({KEY: Spec(ip, SERVICE_PORT, node_port=node_port)},
                      {KEY: ready(backends)})
    assert table.node_ip is not None
    assert table.listening(KEY) == sorted([(ip, SERVICE_PORT), (table.node_ip, node_port)])
    assert set(await names(table.node_ip, node_port, 6)) == {"web-a", "web-b", "web-c"}


async def test_not_ready_backend_gets_no_new_connections(
        table: ProxyTable, backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    services = {KEY: Spec(ip, SERVICE_PORT)}
    await table.apply(services, {KEY: ready(backends)})
    await names(ip, SERVICE_PORT, 3)
    endpoints = [backends[0].backend(), backends[1].backend(ready=False), backends[2].backend()]
    await table.apply(services, {KEY: endpoints})
    assert await names(ip, SERVICE_PORT, 10) == {"web-a": 5, "web-c": 5}


async def test_refusing_backend_is_skipped_without_client_failures(
        table: ProxyTable, backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    dead = Backend("127.0.0.1", refused_port())
    endpoints = [backends[0].backend(), dead, backends[1].backend(), backends[2].backend()]
    await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: endpoints})
    seen = await names(ip, SERVICE_PORT, 40)  # every http_get asserts a 200
    assert sum(seen.values()) == 40
    assert set(seen) == {"web-a", "web-b", "web-c"}


async def test_no_reachable_backend_resets_the_client(table: ProxyTable) -> None:
    ip = random_cluster_ip()
    await table.apply({KEY: Spec(ip, SERVICE_PORT)},
                      {KEY: [Backend("127.0.0.1", refused_port())]})
    with pytest.raises((ConnectionError, AssertionError)):
        await http_get(ip, SERVICE_PORT)


async def test_in_flight_connection_to_removed_backend_completes(
        table: ProxyTable, backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    services = {KEY: Spec(ip, SERVICE_PORT)}
    await table.apply(services, {KEY: ready(backends[:1])})
    reader, writer = await asyncio.open_connection(ip, SERVICE_PORT)
    writer.write(b"one\n")
    assert await reader.readline() == b"web-a one\n"

    await table.apply(services, {KEY: ready(backends[1:])})
    assert await names(ip, SERVICE_PORT, 4) == {"web-b": 2, "web-c": 2}

    writer.write(b"two\n")
    assert await reader.readline() == b"web-a two\n"
    writer.write_eof()  # half-close: the backend still answers after our EOF
    assert await reader.read() == b"web-a bye\n"
    writer.close()


async def test_removed_service_stops_listening_but_connection_finishes(
        table: ProxyTable, backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: ready(backends[:1])})
    reader, writer = await asyncio.open_connection(ip, SERVICE_PORT)
    writer.write(b"hello\n")
    assert await reader.readline() == b"web-a hello\n"

    await table.apply({}, {})
    assert table.listening(KEY) == []
    with pytest.raises(ConnectionRefusedError):
        await http_get(ip, SERVICE_PORT)

    writer.write(b"still\n")
    assert await reader.readline() == b"web-a still\n"
    writer.write_eof()
    assert await reader.read() == b"web-a bye\n"
    writer.close()


async def test_least_connections_avoids_the_busy_backend(
        table: ProxyTable, backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    await table.apply({KEY: Spec(ip, SERVICE_PORT, algorithm=Algorithm.LEAST_CONNECTIONS)},
                      {KEY: ready(backends)})
    held = []
    for _ in range(3):  # one long connection on each backend
        held.append(await asyncio.open_connection(ip, SERVICE_PORT))
    for reader, writer in held[:2]:  # close two: their backends become the least loaded
        writer.write_eof()
        await reader.read()
        writer.close()
    busy = await _echo_name(*held[2])
    balancer = table.balancer(KEY)
    assert balancer is not None
    await eventually(lambda: sum(map(balancer.open_connections, balancer.backends)) == 1)
    seen = await names(ip, SERVICE_PORT, 6)
    assert busy not in seen and sum(seen.values()) == 6
    held[2][1].close()


async def test_client_ip_affinity_keeps_a_client_on_one_backend(
        table: ProxyTable, backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    await table.apply({KEY: Spec(ip, SERVICE_PORT, session_affinity=ClientIPAffinity(60))},
                      {KEY: ready(backends)})
    by_client = {}
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        by_client[source] = {await http_get(ip, SERVICE_PORT, source) for _ in range(5)}
    assert all(len(seen) == 1 for seen in by_client.values())
    assert len(set.union(*by_client.values())) == 3  # round-robin placed the three clients


async def test_large_transfer_both_ways_is_intact(table: ProxyTable,
                                                  backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: ready(backends[:1])})
    reader, writer = await asyncio.open_connection(ip, SERVICE_PORT)
    lines = [b"%07d" % i + b"x" * 1000 + b"\n" for i in range(4000)]  # ~4 MB

    async def send() -> None:
        for line in lines:
            writer.write(line)
            await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    received = await reader.read()
    await sender
    writer.close()
    assert received == b"".join(b"web-a " + line for line in lines) + b"web-a bye\n"


async def test_close_resets_connections_in_flight(backends: list[NamedBackend]) -> None:
    table = ProxyTable()
    ip = random_cluster_ip()
    await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: ready(backends[:1])})
    reader, writer = await asyncio.open_connection(ip, SERVICE_PORT)
    await _echo_name(reader, writer)
    await table.close()
    with pytest.raises(ConnectionResetError):  # a reset, never a clean end of a cut stream
        await reader.read()
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await http_get(ip, SERVICE_PORT)


async def test_two_tables_share_a_cluster_ip_with_reuseport(
        table: ProxyTable, backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    other = ProxyTable(node_ip=random_node_ip())
    try:
        services = {KEY: Spec(ip, SERVICE_PORT)}
        await table.apply(services, {KEY: ready(backends)})
        await other.apply(services, {KEY: ready(backends)})
        assert other.listening(KEY) == [(ip, SERVICE_PORT)]
        await other.close()  # one agent dies: the Service still answers
        assert set(await names(ip, SERVICE_PORT, 6)) == {"web-a", "web-b", "web-c"}
    finally:
        await other.close()


async def test_changed_spec_moves_listeners_and_keeps_backends(
        table: ProxyTable, backends: list[NamedBackend]) -> None:
    ip, node_port = random_cluster_ip(), random_node_port()
    await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: ready(backends)})
    await table.apply({KEY: Spec(ip, SERVICE_PORT, node_port=node_port)},
                      {KEY: ready(backends)})
    assert table.node_ip is not None
    assert set(await names(table.node_ip, node_port, 3)) == {"web-a", "web-b", "web-c"}
    await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: ready(backends)})
    assert table.listening(KEY) == [(ip, SERVICE_PORT)]
    with pytest.raises(ConnectionRefusedError):
        await http_get(table.node_ip, node_port)


async def test_headless_and_udp_ports_get_no_listener(table: ProxyTable) -> None:
    udp = ServicePortKey("default", "dns", "udp")
    await table.apply({KEY: Spec(None, SERVICE_PORT), udp: Spec(random_cluster_ip(), 53, "UDP")},
                      {})
    assert table.listening(KEY) == [] and table.listening(udp) == []


async def _echo_name(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    writer.write(b"who\n")
    return (await reader.readline()).split()[0].decode()


async def test_slow_reader_gets_every_byte(table: ProxyTable,
                                           backends: list[NamedBackend]) -> None:
    ip = random_cluster_ip()
    await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: ready(backends[:1])})
    reader, writer = await asyncio.open_connection(ip, SERVICE_PORT, limit=1 << 16)
    lines = [b"%07d" % i + b"y" * 4000 + b"\n" for i in range(2000)]  # ~8 MB, past every buffer

    async def send() -> None:
        for line in lines:
            writer.write(line)
            await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    chunks = []
    while chunk := await reader.read(1 << 16):
        chunks.append(chunk)
        if len(chunks) % 16 == 0:
            await asyncio.sleep(0.001)  # read slowly: the proxy must hold back, not drop
    await sender
    writer.close()
    assert b"".join(chunks) == b"".join(b"web-a " + line for line in lines) + b"web-a bye\n"


async def test_backend_that_never_accepts_is_skipped_after_the_timeout(
        backends: list[NamedBackend]) -> None:
    # A listen(0) socket whose queue is full drops further handshakes: connect hangs.
    stuck = socket.socket()
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(0)
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(stuck.getsockname())
    table = ProxyTable(connect_timeout=0.2)
    try:
        ip = random_cluster_ip()
        dead = Backend(*stuck.getsockname())
        await table.apply({KEY: Spec(ip, SERVICE_PORT)}, {KEY: [dead, backends[0].backend()]})
        assert [await http_get(ip, SERVICE_PORT) for _ in range(4)] == ["web-a"] * 4
    finally:
        await table.close()
        for sock in [stuck, *fillers]:
            sock.close()
