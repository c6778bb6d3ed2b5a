"""The socket-level load balancer (NftProxy with a SocketLB) in network namespaces of
the test's own: TCP clusterIP connects go straight to a ready endpoint with no
NAT, only in the agent's namespace; what the hook does not take (NodePort,
sessionAffinity ClientIP) still goes through nftables; closing detaches and frees
the programs; a program the verifier refuses says why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from corral.agent.services import open_socket_lb
from corral.bpf.asm import R0, R2, Program
from corral.bpf.syscall import AttachType, ProgType, VerifierError, load, program_exists
from corral.bpf.syscall import query_cgroup as query
from corral.proxy.conntrack import parse_flows
from corral.proxy.model import ClientIPAffinity, ServicePortKey
from corral.proxy.model import ServiceProxySpec as Spec
from corral.proxy.nftables import NftProxy
from corral.proxy.socklb import SocketLB, SocketLBError, cgroup2_root
from tests.integration.proxy.backends import NamedBackend, http_get
from tests.integration.proxy.test_nftables import (
    CLUSTER_IP,
    NODE_IP,
    NODE_PORT,
    TABLE,
    WEB,
    names,
    ready,
    tables,
    with_backends,
)
from tests.netns import Netns
from tests.poll import eventually

pytestmark = pytest.mark.timeout(120)
STICKY_IP = "127.100.0.11"


def bpf_program_ids(pid: int | str = "self") -> set[int]:
    """Programs a process holds (a program's or a link's descriptor names its id)."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue  # closed meanwhile
        ids |= {int(line.split()[1]) for line in text.splitlines() if line.startswith("prog_id:")}
    return ids


def attached_connect_programs() -> set[int]:
    fd = os.open(cgroup2_root(), os.O_RDONLY | os.O_DIRECTORY)
    try:
        return set(query(fd, AttachType.CGROUP_INET4_CONNECT))
    finally:
        os.close(fd)


def conntrack_flows(ns: Netns, sport: int) -> list[tuple[str, int, bool]]:
    """(original destination, port, DNATed) of the namespace's flows from ``sport``."""
    return [(f.dst, f.dport, f.dnated) for f in parse_flows(ns.sh("conntrack", "-L", "-p", "tcp"))
            if f.sport == sport]


def connect_in(ns: Netns, address: tuple[str, int]) -> tuple[str, int]:
    """A blocking connect from a thread in ``ns``; the peer the socket reports."""
    def connect() -> tuple[str, int]:
        with socket.create_connection(address, timeout=5) as sock:
            peer: tuple[str, int] = sock.getpeername()
            return peer
    return ns.call(connect)


def dual_stack_hello(ip: str) -> tuple[tuple[str, int], int, bytes]:
    """(peer, local port, first line back) of an IPv6 socket's echo to ::ffff:ip:80."""
    with socket.socket(socket.AF_INET6) as sock:
        sock.settimeout(5)
        sock.connect((f"::ffff:{ip}", 80))
        sock.sendall(b"hello\n")
        line = sock.makefile("rb").readline()
        return sock.getpeername()[:2], sock.getsockname()[1], line


def test_cluster_ip_connects_go_straight_to_ready_backends_in_this_namespace_only(
        netns: Callable[[], Netns], tmp_path: Path) -> None:
    host, other = netns(), netns()
    host.sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")
    sticky = ServicePortKey("default", "sticky")
    # The same clusterIP:port in another namespace is somebody else's: it must not move.
    listener = other.call(lambda: socket.create_server((CLUSTER_IP, 80)))

    async def scenario(servers: list[NamedBackend]) -> None:
        proxy = NftProxy(TABLE, NODE_IP, run_dir=tmp_path, socket_lb=SocketLB.open())
        assert proxy.socket_lb is not None
        ours = bpf_program_ids()
        services = {WEB: Spec(CLUSTER_IP, 80, node_port=NODE_PORT),
                    sticky: Spec(STICKY_IP, 80, session_affinity=ClientIPAffinity(600))}
        try:
            await proxy.apply(services, {WEB: ready(servers, 1), sticky: ready(servers)})
            expected = {"web-0", "web-2"}  # web-1 is not ready
            web0, _, web2 = (s.backend().address for s in servers)
            assert proxy.socket_lb.steered == {(CLUSTER_IP, 80): (web0, web2)}
            assert set(await names(CLUSTER_IP, 80, 4)) == expected  # round-robin

            # A direct connection: the application sees the clusterIP (getpeername),
            # conntrack sees the endpoint as the original destination, no DNAT.
            reader, writer = await asyncio.open_connection(CLUSTER_IP, 80)
            writer.write(b"hello\n")
            assert (await reader.readline()).endswith(b" hello\n")
            assert writer.get_extra_info("peername") == (CLUSTER_IP, 80)
            [(dst, dport, dnated)] = conntrack_flows(host, writer.get_extra_info("sockname")[1])
            assert (dst, dport) in (web0, web2) and not dnated
            writer.close()
            # A dual-stack socket (Java's default) connecting to ::ffff:<clusterIP>.
            peer, sport, line = await asyncio.to_thread(dual_stack_hello, CLUSTER_IP)
            assert peer == (f"::ffff:{CLUSTER_IP}", 80) and line.endswith(b" hello\n")
            [(dst, dport, dnated)] = conntrack_flows(host, sport)
            assert (dst, dport) in (web0, web2) and not dnated

            # sessionAffinity ClientIP and NodePorts are nftables' (DNATed).
            assert len(await names(STICKY_IP, 80, 4)) == 1
            reader, writer = await asyncio.open_connection(STICKY_IP, 80)
            assert conntrack_flows(host, writer.get_extra_info("sockname")[1])[0][::2] == (
                STICKY_IP, True)
            writer.close()
            assert await http_get(NODE_IP, NODE_PORT) in expected

            assert await asyncio.to_thread(connect_in, other, (CLUSTER_IP, 80)) == (
                CLUSTER_IP, 80)
            assert ours & attached_connect_programs()

            # Handed back to nftables (given affinity): new connections are DNATed,
            # the ones the hook made keep going (their endpoint did not leave).
            reader, writer = await asyncio.open_connection(CLUSTER_IP, 80)
            writer.write(b"hello\n")
            await reader.readline()
            services[WEB] = Spec(CLUSTER_IP, 80, session_affinity=ClientIPAffinity(600))
            await proxy.apply(services, {WEB: ready(servers, 1), sticky: ready(servers)})
            await proxy.flushed()
            assert proxy.socket_lb.steered == {}
            writer.write(b"still\n")
            assert (await reader.readline()).endswith(b" still\n")
            writer.close()
            _, writer = await asyncio.open_connection(CLUSTER_IP, 80)
            [(dst, _, dnated)] = conntrack_flows(host, writer.get_extra_info("sockname")[1])
            assert (dst, dnated) == (CLUSTER_IP, True)
            writer.close()
        finally:
            await proxy.close()

        # Closed: detached from the cgroup and freed (the kernel frees after RCU).
        assert not ours & attached_connect_programs()
        await eventually(lambda: not any(map(program_exists, ours)), timeout=10,
                         what="the programs freed")

    host.run(lambda: with_backends(3, scenario))
    listener.close()
    assert tables(host) == []


def test_a_program_the_verifier_refuses_says_why() -> None:
    reads_unset_register = Program().mov(R0, R2).exit().assemble()
    with pytest.raises(VerifierError) as refused:
        load(ProgType.CGROUP_SOCK_ADDR, reads_unset_register, "corral_bad",
             AttachType.CGROUP_INET4_CONNECT)
    assert "R2 !read_ok" in refused.value.log
    assert "corral_bad" in str(refused.value) and "R2 !read_ok" in str(refused.value)


def test_where_the_hook_cannot_attach_it_says_why_and_leaves_nothing_open(
        tmp_path: Path) -> None:
    """Not a cgroup (as a host whose cgroup2 is elsewhere): SocketLBError with the
    kernel's reason, which the agent logs before running nftables alone."""
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(SocketLBError, match="LINK_CREATE"):
        SocketLB.open(cgroup=tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before
    assert not bpf_program_ids()


def test_the_agent_says_which_data_path_runs_and_why(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="corral.agent.services")
    assert open_socket_lb(False) is None
    assert "data path=nftables-only socket_lb=off reason='asked for (--socket-lb=false)'" in (
        caplog.text)
    lb = open_socket_lb(True)
    assert lb is not None
    try:
        assert f"data path=socket-lb+nftables socket_lb=on cgroup={cgroup2_root()}" in (
            caplog.text)
    finally:
        lb.close()


def test_two_agents_hooks_on_one_host_steer_once(netns: Callable[[], Netns]) -> None:
    """Two agents of one namespace each attach a hook with the same maps: the first
    rewrites, the second sees an endpoint address (in none of its maps) and leaves
    it; when the first goes, the second steers alone."""
    host = netns()
    host.sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")

    async def scenario(servers: list[NamedBackend]) -> None:
        services = {WEB: Spec(CLUSTER_IP, 80)}
        first, second = SocketLB.open(), SocketLB.open()
        try:
            for lb in (first, second):
                lb.apply(services, {WEB: ready(servers)})
            reader, writer = await asyncio.open_connection(CLUSTER_IP, 80)
            writer.write(b"hello\n")
            await reader.readline()
            assert remembered(first) == 1 and remembered(second) == 0
            writer.close()
            first.close()
            assert set(await names(CLUSTER_IP, 80, 4)) == {"web-0", "web-1"}
            reader, writer = await asyncio.open_connection(CLUSTER_IP, 80)
            writer.write(b"hello\n")
            await reader.readline()
            assert remembered(second) >= 1  # (earlier ones may not be released yet)
            writer.close()
        finally:
            first.close()
            second.close()

    host.run(lambda: with_backends(2, scenario))


def remembered(lb: SocketLB) -> int:
    """Connections the hook steered and still remembers (open sockets)."""
    assert lb.frontends is not None
    return len(list(lb.frontends.keys()))
