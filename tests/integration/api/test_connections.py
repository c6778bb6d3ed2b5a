"""Connections and requests in flight are bounded, and the bounds leave room for
everyone else: idle connections past the cap are closed, slow headers are cut
off, the open files limit is raised, and a flood from one client waits behind
itself (429 with Retry-After past its queue) while others are served."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.loadgen import Connection
from tests.cluster import Master

NS = "conn"


@pytest.fixture(scope="module")
def small_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("small"), extra_args=[
        "--disable", "scheduler", "--disable", "controllers",
        "--max-connections", "40", "--request-header-timeout", "2",
        "--max-requests-inflight", "8"]).start()
    try:
        with m.http() as http:
            assert http.post("/api/v1/namespaces", json={"metadata": {"name": NS}}
                             ).status_code == 201
        yield m
    finally:
        m.stop()


def _tls(m: Master) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(m.ca_path))
    return ctx.wrap_socket(socket.create_connection((m.host, m.port), timeout=30),
                           server_hostname=m.host)


def _closed(sock: ssl.SSLSocket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionError, ssl.SSLError):
        return True


def test_the_open_files_limit_is_raised_to_the_hard_limit(small_master: Master) -> None:
    assert small_master.proc is not None
    limits = Path(f"/proc/{small_master.proc.pid}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    assert soft == hard, line


def test_idle_connections_past_the_cap_make_room_for_a_request(small_master: Master) -> None:
    idle = [_tls(small_master) for _ in range(60)]  # 1.5 times the cap, none sending
    try:
        with small_master.http() as http:
            r = http.get(f"/api/v1/namespaces/{NS}/configmaps")
            assert r.status_code == 200, r.text
        for sock in idle:
            sock.settimeout(10)
        assert sum(_closed(s) for s in idle[:20]) >= 1, "no idle connection was closed"
    finally:
        for sock in idle:
            sock.close()


def test_headers_sent_too_slowly_are_cut_off(small_master: Master) -> None:
    with _tls(small_master) as sock:
        sock.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        sock.settimeout(0.3)
        closed = False
        while not closed and time.monotonic() - started < 30:
            try:
                sock.sendall(b"a")
                closed = sock.recv(1) == b""
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                closed = True
        assert closed, "a connection dripping its headers was kept open for 30 s"


def test_one_client_flooding_waits_behind_itself(small_master: Master) -> None:
    """30 requests at once from one client into a lane of 2 seats and a queue of 4
    per client: the ones past its queue get 429 with Retry-After and a Status;
    another client's request is served meanwhile."""
    statuses: Counter[int] = Counter()
    bodies: list[bytes] = []

    async def flood() -> float:
        conns = await asyncio.gather(*(Connection.open(small_master.url, small_master.token,
                                                       str(small_master.ca_path))
                                       for _ in range(30)))

        async def send(conn: Connection, n: int) -> None:
            for i in range(10):
                status, body = await conn.request(
                    "POST", f"/api/v1/namespaces/{NS}/configmaps",
                    b'{"metadata":{"name":"f%d-%d"}}' % (n, i))
                statuses[status] += 1
                if status == 429:
                    bodies.append(body)

        async def other() -> float:
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(
                    base_url=small_master.url, verify=str(small_master.ca_path),
                    headers={"Authorization": f"Bearer {small_master.token}",
                             "User-Agent": "kubectl/v1.32.4"}) as c:
                t0 = time.monotonic()
                r = await c.get(f"/api/v1/namespaces/{NS}/configmaps?limit=1")
                assert r.status_code == 200, r.text
                return time.monotonic() - t0

        results = await asyncio.gather(other(), *(send(c, n) for n, c in enumerate(conns)))
        for conn in conns:
            conn.close()
        return float(results[0])

    asyncio.run(flood())
    assert set(statuses) <= {201, 429}, statuses
    assert statuses[201] > 0 and statuses[429] > 0, statuses
    for body in bodies[:3]:
        assert b'"reason":"TooManyRequests"' in body and b'"retryAfterSeconds":1' in body
