"""Host port allocation on a loopback bind address."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from corral.agent.runtime.ports import (
    PortAllocator,
    PortBinding,
    PortRequest,
    PortsExhausted,
    port_env,
)

ADDRESS = "127.0.0.1"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind((ADDRESS, 0))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


def test_each_pod_gets_distinct_free_ports() -> None:
    ports = PortAllocator(ADDRESS, (29100, 29111))
    web = ports.allocate("pod-a", [PortRequest(8080, "http"), PortRequest(9090, "metrics")])
    other = ports.allocate("pod-b", [PortRequest(8080, "http")])
    taken = [b.host_port for b in web + other]
    assert len(set(taken)) == 3 and all(29100 <= p <= 29111 for p in taken)
    assert web[0] == PortBinding(8080, "http", "TCP", ADDRESS, web[0].host_port)
    assert ports.allocate("pod-a", []) == web  # idempotent per pod


def test_ports_in_use_by_others_are_skipped(listener: socket.socket) -> None:
    busy = listener.getsockname()[1]
    ports = PortAllocator(ADDRESS, (busy, busy))
    with pytest.raises(PortsExhausted):
        ports.allocate("pod", [PortRequest(80)])
    listener.close()
    (binding,) = ports.allocate("pod", [PortRequest(80)])
    assert binding.host_port == busy


def test_exhaustion_and_release() -> None:
    ports = PortAllocator(ADDRESS, (29120, 29121))
    ports.allocate("a", [PortRequest(1), PortRequest(2)])
    with pytest.raises(PortsExhausted, match="no free TCP port in 29120-29121"):
        ports.allocate("b", [PortRequest(1)])
    assert ports.bindings("b") == []  # a failed allocation holds nothing
    ports.release("a")
    assert len(ports.allocate("b", [PortRequest(1)])) == 1


def test_fixed_host_port_and_restore(listener: socket.socket) -> None:
    busy = listener.getsockname()[1]
    ports = PortAllocator(ADDRESS, (29130, 29131))
    with pytest.raises(PortsExhausted, match=f"hostPort {busy}/TCP"):
        ports.allocate("a", [PortRequest(80, host_port=busy)])
    restored = [PortBinding(80, None, "TCP", ADDRESS, 29130)]
    ports.restore("old", restored)  # adopted after an agent restart
    (fresh,) = ports.allocate("new", [PortRequest(80)])
    assert fresh.host_port == 29131


def test_port_env() -> None:
    bindings = [PortBinding(8080, "http-alt", "TCP", ADDRESS, 20001),
                PortBinding(53, None, "UDP", ADDRESS, 20002)]
    assert port_env(bindings) == {"PORT": "20001", "PORT_HTTP_ALT": "20001"}
    assert port_env([]) == {}
