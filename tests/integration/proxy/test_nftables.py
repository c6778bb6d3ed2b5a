"""NftProxy programming a real nftables table, each test in network namespaces of its
own: a "host" where the table, the backends and local clients live, and (where
traffic comes from outside) a second namespace joined to it by a veth pair.

Backends listen on the host's veth address, as pods listen on their node's IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from corral.proxy.model import Backend, ClientIPAffinity, ServicePortKey
from corral.proxy.model import ServiceProxySpec as Spec
from corral.proxy.nftables import NftProxy
from corral.proxy.socklb import SocketLB
from tests.integration.proxy.backends import NamedBackend, http_get
from tests.netns import Netns
from tests.poll import eventually

pytestmark = pytest.mark.timeout(120)
NODE_IP, OUTSIDE_IP = "10.77.0.1", "10.77.0.2"
CLUSTER_IP, NODE_PORT = "127.100.0.10", 30080
WEB = ServicePortKey("default", "web", "http")
TABLE = "corral-test"
NewNetns = Callable[[], Netns]


def tables(ns: Netns) -> list[str]:
    listing = json.loads(ns.sh("nft", "-j", "list", "tables"))
    return [i["table"]["name"] for i in listing["nftables"] if "table" in i]


def table_json(ns: Netns) -> list[dict[str, object]]:
    return list(json.loads(ns.sh("nft", "-j", "list", "table", "ip", TABLE))["nftables"])


async def names(host: str, port: int, count: int) -> Counter[str]:
    return Counter([await http_get(host, port) for _ in range(count)])


async def with_backends(count: int, body: Callable[[list[NamedBackend]], Awaitable[None]]
                        ) -> None:
    servers = [await NamedBackend(f"web-{i}", NODE_IP).start() for i in range(count)]
    try:
        await body(servers)
    finally:
        await asyncio.gather(*(s.close() for s in servers))


def ready(servers: list[NamedBackend], *unready: int) -> list[Backend]:
    return [s.backend(ready=i not in unready) for i, s in enumerate(servers)]


def test_cluster_ip_and_node_port_reach_every_ready_backend(netns: NewNetns,
                                                            tmp_path: Path) -> None:
    host, outside = netns(), netns()
    host.link(outside, NODE_IP, OUTSIDE_IP)
    sticky = ServicePortKey("default", "sticky")
    headless, empty = ServicePortKey("default", "headless"), ServicePortKey("default", "empty")

    async def scenario(servers: list[NamedBackend]) -> None:
        proxy = NftProxy(TABLE, NODE_IP, run_dir=tmp_path)
        services = {WEB: Spec(CLUSTER_IP, 80, node_port=NODE_PORT),
                    sticky: Spec("127.100.0.11", 80, session_affinity=ClientIPAffinity(600)),
                    headless: Spec(None, 80),
                    empty: Spec("127.100.0.12", 80, node_port=NODE_PORT + 1)}
        backends = {WEB: ready(servers, 1), sticky: ready(servers), headless: ready(servers)}
        await proxy.apply(services, backends)
        try:
            expected = {"web-0", "web-2"}  # web-1 is not ready
            assert set(await names(CLUSTER_IP, 80, 6)) == expected  # from the same host
            assert set(await names(NODE_IP, NODE_PORT, 6)) == expected
            from_outside = await asyncio.to_thread(
                outside.run, lambda: names(NODE_IP, NODE_PORT, 6))
            assert set(from_outside) == expected
            # NodePorts answer on the node's IP only, not on every local address.
            with pytest.raises(ConnectionRefusedError):
                await http_get("127.0.0.1", NODE_PORT)
            # ClientIP affinity: one client keeps one backend.
            assert len(await names("127.100.0.11", 80, 6)) == 1
            # No ready endpoint: refused at once (a reset), locally and from outside.
            with pytest.raises(ConnectionRefusedError):
                await http_get("127.100.0.12", 80)
            with pytest.raises(ConnectionRefusedError):
                await asyncio.to_thread(outside.run, lambda: http_get(NODE_IP, NODE_PORT + 1))
            # Headless Services get nothing; the table holds only what was asked.
            listing = json.dumps(table_json(host))
            assert "headless" not in listing and "web-1" not in listing
        finally:
            await proxy.close()

    host.run(lambda: with_backends(3, scenario))
    assert tables(host) == []  # the only (so the last) agent on the host removed it


def test_backend_turning_unready_leaves_rotation(netns: NewNetns, tmp_path: Path) -> None:
    host = netns()
    host.sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")

    async def scenario(servers: list[NamedBackend]) -> None:
        proxy = NftProxy(TABLE, NODE_IP, run_dir=tmp_path)
        services = {WEB: Spec(CLUSTER_IP, 80)}
        try:
            await proxy.apply(services, {WEB: ready(servers)})
            assert set(await names(CLUSTER_IP, 80, 9)) == {"web-0", "web-1", "web-2"}
            await proxy.apply(services, {WEB: ready(servers, 1)})  # one write: in effect now
            assert set(await names(CLUSTER_IP, 80, 9)) == {"web-0", "web-2"}
            await proxy.apply(services, {WEB: ready(servers)})
            assert set(await names(CLUSTER_IP, 80, 9)) == {"web-0", "web-1", "web-2"}
        finally:
            await proxy.close()

    host.run(lambda: with_backends(3, scenario))


@pytest.mark.parametrize("socket_lb", [False, True], ids=["nftables", "socket-lb"])
def test_endpoint_removed_mid_connection_drops_the_connection(netns: NewNetns,
                                                              tmp_path: Path,
                                                              socket_lb: bool) -> None:
    """With nftables alone the conntrack entry goes; with the socket-level load
    balancer the connection is direct, and the client's socket is aborted."""
    host = netns()
    host.sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")

    async def scenario(servers: list[NamedBackend]) -> None:
        proxy = NftProxy(TABLE, NODE_IP, run_dir=tmp_path,
                         socket_lb=SocketLB.open() if socket_lb else None)
        services = {WEB: Spec(CLUSTER_IP, 80, node_port=NODE_PORT)}
        try:
            await proxy.apply(services, {WEB: ready(servers[:1])})
            connections = []  # an IPv4 socket, and a dual-stack one to ::ffff:<clusterIP>
            for address in (CLUSTER_IP, f"::ffff:{CLUSTER_IP}"):
                reader, writer = await asyncio.open_connection(address, 80)
                writer.write(b"hello\n")
                assert await reader.readline() == b"web-0 hello\n"
                connections.append((reader, writer))
            await proxy.apply(services, {WEB: ready(servers[1:])})  # web-0 leaves
            await proxy.flushed()
            # The conntrack entry is gone: the next segment is a new flow, DNATed to
            # web-1, which knows no such connection and resets it (or the socket was
            # aborted: ECONNABORTED). No hang.
            for reader, writer in connections:
                writer.write(b"again\n")
                with pytest.raises(ConnectionError):
                    async with asyncio.timeout(10):
                        line = await reader.readline()
                        if not line:
                            raise ConnectionResetError("closed")
                writer.close()
            assert await http_get(CLUSTER_IP, 80) == "web-1"
        finally:
            await proxy.close()

    host.run(lambda: with_backends(2, scenario))


def test_thousand_services_in_one_transaction(netns: NewNetns, tmp_path: Path) -> None:
    host = netns()
    host.sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")
    keys = [ServicePortKey("bulk", f"svc-{i}") for i in range(1000)]

    def cluster_ip(i: int) -> str:
        return f"127.101.{i // 250}.{i % 250 + 1}"

    async def scenario(servers: list[NamedBackend]) -> None:
        proxy = NftProxy(TABLE, NODE_IP, run_dir=tmp_path)
        services = {k: Spec(cluster_ip(i), 80, node_port=30000 + i) for i, k in enumerate(keys)}
        try:
            await proxy.apply(services, {k: ready(servers[i % 2:i % 2 + 1])
                                         for i, k in enumerate(keys)})
            assert proxy.writes == 1
            for i in (0, 1, 499, 998, 999):
                assert await http_get(cluster_ip(i), 80) == f"web-{i % 2}"
                assert await http_get(NODE_IP, 30000 + i) == f"web-{i % 2}"
        finally:
            listing = table_json(host)
            await proxy.close()
        maps = {i["map"]["name"]: i["map"].get("elem", []) for i in listing if "map" in i}
        assert len(maps["service-ips"]) == len(maps["service-nodeports"]) == 1000
        # The lookup is the same two rules whatever the number of Services.
        services_rules = [i for i in listing
                          if "rule" in i and i["rule"]["chain"] == "services"]
        assert len(services_rules) == 2

    host.run(lambda: with_backends(2, scenario))


def test_a_second_proxy_on_the_host_waits_then_takes_over(netns: NewNetns,
                                                          tmp_path: Path) -> None:
    """Two agents' proxies on one host: one writes, NodePorts answer on both nodes'
    IPs; when the writer leaves the other writes, and only its node answers; the
    table goes with the last."""
    host = netns()
    other_ip = "10.77.0.5"
    for address in (NODE_IP, other_ip):
        host.sh("ip", "addr", "add", f"{address}/32", "dev", "lo")

    async def scenario(servers: list[NamedBackend]) -> None:
        first = NftProxy(TABLE, NODE_IP, run_dir=tmp_path, poll_seconds=0.05)
        second = NftProxy(TABLE, other_ip, run_dir=tmp_path, poll_seconds=0.05)
        services = {WEB: Spec(CLUSTER_IP, 80, node_port=NODE_PORT)}

        async def node_ports_answering() -> set[str]:
            found = set()
            for address in (NODE_IP, other_ip):
                with contextlib.suppress(ConnectionRefusedError):
                    found.add((address, await http_get(address, NODE_PORT)))
            return {address for address, _ in found}

        try:
            await first.apply(services, {WEB: ready(servers[:1])})
            await second.apply(services, {WEB: ready(servers[:1])})
            assert (first.writing, second.writing) == (True, False)
            assert second.writes == 0
            await eventually(lambda: _equal(node_ports_answering(), {NODE_IP, other_ip}),
                             timeout=10, what="the second member's NodePort address")
            await second.apply(services, {WEB: ready(servers[1:])})  # a view the writer lacks
            await first.close()  # not the last: the table stays, the second takes over
            assert TABLE in tables(host)

            async def second_wrote() -> bool:
                return second.writes > 0
            await eventually(second_wrote, timeout=10, what="the second proxy writing")
            assert await http_get(CLUSTER_IP, 80) == "web-1"
            assert await node_ports_answering() == {other_ip}
        finally:
            await first.close()
            await second.close()
        assert tables(host) == []

    host.run(lambda: with_backends(2, scenario))


async def _equal(value: Awaitable[set[str]], expected: set[str]) -> bool:
    return await value == expected


def test_a_table_flushed_away_is_written_again(netns: NewNetns, tmp_path: Path) -> None:
    """As after a firewall reload (`flush ruleset`): the writer notices at its next
    check and writes the whole table again, with no Service changing."""
    host = netns()
    host.sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")

    async def scenario(servers: list[NamedBackend]) -> None:
        proxy = NftProxy(TABLE, NODE_IP, run_dir=tmp_path, poll_seconds=0.05)
        try:
            await proxy.apply({WEB: Spec(CLUSTER_IP, 80)}, {WEB: ready(servers)})
            assert await http_get(CLUSTER_IP, 80) == "web-0"
            proxy.check_seconds = 3600  # not yet: first see that the flush broke it
            host.sh("nft", "flush", "ruleset")  # the test's own namespace: nothing else in it
            with pytest.raises(ConnectionRefusedError):
                await http_get(CLUSTER_IP, 80)
            proxy.check_seconds = 0.1

            async def served() -> bool:
                try:
                    return await http_get(CLUSTER_IP, 80) == "web-0"
                except ConnectionRefusedError:
                    return False
            await eventually(served, timeout=10, what="the table written again")
        finally:
            await proxy.close()
        assert tables(host) == []

    host.run(lambda: with_backends(1, scenario))


def test_a_new_writer_reconciles_what_a_dead_one_left(netns: NewNetns, tmp_path: Path) -> None:
    """As after kill -9 and a restart: the table left behind is read back, Services
    gone since are removed and their connections dropped."""
    host = netns()
    host.sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")
    gone = ServicePortKey("default", "gone")

    async def scenario(servers: list[NamedBackend]) -> None:
        dead = NftProxy(TABLE, NODE_IP, run_dir=tmp_path)
        await dead.apply({WEB: Spec(CLUSTER_IP, 80), gone: Spec("127.100.0.20", 80)},
                         {WEB: ready(servers[:1]), gone: ready(servers[1:])})
        reader, writer = await asyncio.open_connection("127.100.0.20", 80)
        writer.write(b"hello\n")
        assert await reader.readline() == b"web-1 hello\n"
        dead.host.stop_writing()  # what the kernel does for a killed process
        dead.host.leave(lambda: None)
        assert dead._poller is not None
        dead._poller.cancel()
        restarted = NftProxy(TABLE, NODE_IP, run_dir=tmp_path)
        try:
            await restarted.apply({WEB: Spec(CLUSTER_IP, 80)}, {WEB: ready(servers[:1])})
            await restarted.flushed()
            chains = {i["chain"]["name"] for i in table_json(host) if "chain" in i}
            assert not any("gone" in name for name in chains)
            writer.write(b"again\n")
            with pytest.raises(ConnectionError):
                async with asyncio.timeout(10):
                    if not await reader.readline():
                        raise ConnectionResetError("closed")
            writer.close()
            with pytest.raises(ConnectionRefusedError):
                await http_get("127.100.0.20", 80)  # nothing there any more
        finally:
            await restarted.close()
        assert tables(host) == []

    host.run(lambda: with_backends(2, scenario))


def normalized(ns: Netns, table: str) -> dict[str, object]:
    """A table's content without handles or order: chains' rules, maps' elements, sets."""
    content: dict[str, object] = {}
    for item in json.loads(ns.sh("nft", "-j", "list", "table", "ip", table))["nftables"]:
        kind = next(iter(item))
        body = item[kind]
        if kind == "rule":
            rules = content.setdefault(f"chain {body['chain']}", [])
            assert isinstance(rules, list)
            rules.append(json.dumps(body["expr"], sort_keys=True))
        elif kind == "chain":
            content.setdefault(f"chain {body['name']}", [])
        elif kind in ("map", "set"):
            elements = sorted(json.dumps(e, sort_keys=True) for e in body.get("elem", []))
            content[f"{kind} {body['name']}"] = elements if kind == "map" else body.get("timeout")
    return content


def test_changes_leave_the_table_a_whole_write_would(netns: NewNetns, tmp_path: Path) -> None:
    """Later writes carry only what changed; after each, the table equals a fresh
    whole write of the same Services."""
    from corral.proxy.nftrules import Existing, build, transaction

    host = netns()
    db = ServicePortKey("default", "db")
    a, b, c = Backend("10.0.0.1", 80), Backend("10.0.0.2", 80), Backend("10.0.0.3", 80)
    steps = [
        ({WEB: Spec(CLUSTER_IP, 80, node_port=NODE_PORT)}, {WEB: [a, b]}),
        ({WEB: Spec(CLUSTER_IP, 80, node_port=NODE_PORT), db: Spec("127.100.0.30", 5432)},
         {WEB: [a, c], db: [b]}),
        ({WEB: Spec(CLUSTER_IP, 80, session_affinity=ClientIPAffinity(30)),
          db: Spec("127.100.0.30", 5432)}, {WEB: [c], db: []}),
        ({WEB: Spec(CLUSTER_IP, 80, node_port=NODE_PORT + 1)}, {WEB: [a, b, c]}),
        ({}, {}),
    ]

    async def scenario() -> None:
        proxy = NftProxy(TABLE, NODE_IP, run_dir=tmp_path)
        try:
            for services, backends in steps:
                await proxy.apply(services, backends)
                whole = tmp_path / "whole.nft"  # (re)created from nothing, in one go
                whole.write_text("add table ip corral-whole\ndelete table ip corral-whole\n"
                                 + transaction("corral-whole",
                                               build(services, backends, [NODE_IP]),
                                               Existing()))
                host.sh("nft", "-f", str(whole))
                assert normalized(host, TABLE) == normalized(host, "corral-whole")
            assert proxy.writes == len(steps)
        finally:
            await proxy.close()

    host.run(scenario)

