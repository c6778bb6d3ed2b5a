"""Service proxy benchmark: prints figures, never passes or fails.

    .venv/bin/python bench/proxy.py [--seconds 2] [--runs 3] [--concurrency 32]

A small HTTP backend and the proxy (a ProxyTable with one Service port) each run
in their own process, as on a node. One load generator, in this process, sends
GETs directly to the backend and through the clusterIP, alternating, in the same
run: first with keep-alive off (a new TCP connection per request, as most
Service traffic between pods is set up), then with keep-alive on. Each figure is
the median of --runs runs; each run is bounded by --seconds and --max-requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.cli import eventloop
from corral.proxy.model import Backend, ServicePortKey, ServiceProxySpec
from corral.proxy.table import ProxyTable

CLUSTER_IP = "127.100.250.1"
BODY = b"backend-0"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%%s\r\n%s" % (len(BODY), BODY))


# -- the processes under test -------------------------------------------------

class _HttpBackend(asyncio.Protocol):
    """Answers every request with BODY; closes after it unless keep-alive."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            request, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            close = b"connection: close" in request.lower()
            header = b"Connection: close\r\n" if close else b"Connection: keep-alive\r\n"
            self.transport.write(RESPONSE % header)
            if close:
                self.transport.close()
                return


async def serve_backend(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_HttpBackend, "127.0.0.1", port,
                                                            backlog=1024)
    print("ready", flush=True)
    async with server:
        await asyncio.Event().wait()


async def serve_proxy(backend_port: int, port: int) -> None:
    table = ProxyTable()
    key = ServicePortKey("bench", "web")
    await table.apply({key: ServiceProxySpec(CLUSTER_IP, port)},
                      {key: [Backend("127.0.0.1", backend_port)]})
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await table.close()


def start(role: str, *args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, __file__, "--role", role, *args],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        stop(process)
        raise RuntimeError(f"{role} did not start")
    return process


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, a grace period, then SIGKILL."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


# -- the load generator ---------------------------------------------------------

REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
REQUEST_KEEP = b"GET / HTTP/1.1\r\nHost: web\r\n\r\n"


@dataclass
class Result:
    requests: int
    failures: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0


async def _one_per_connection(host: str, port: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(REQUEST_CLOSE)
    response = await reader.read()
    writer.close()
    if not response.endswith(BODY):
        raise ConnectionError("short response")


async def _keep_alive_worker(host: str, port: int, deadline: float, budget: list[int],
                             latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            began = time.perf_counter()
            writer.write(REQUEST_KEEP)
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(len(BODY))
            latencies.append(time.perf_counter() - began)
    finally:
        writer.close()


async def _close_worker(host: str, port: int, deadline: float, budget: list[int],
                        latencies: list[float], failures: list[int]) -> None:
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        began = time.perf_counter()
        try:
            await _one_per_connection(host, port)
        except OSError:
            failures[0] += 1
            continue
        latencies.append(time.perf_counter() - began)


async def load(host: str, port: int, keep_alive: bool, seconds: float, concurrency: int,
               max_requests: int) -> Result:
    latencies: list[float] = []
    failures, budget = [0], [max_requests]
    began = time.perf_counter()
    deadline = began + seconds
    if keep_alive:
        workers = [_keep_alive_worker(host, port, deadline, budget, latencies)
                   for _ in range(concurrency)]
    else:
        workers = [_close_worker(host, port, deadline, budget, latencies, failures)
                   for _ in range(concurrency)]
    await asyncio.gather(*workers)
    return Result(len(latencies), failures[0], time.perf_counter() - began, latencies)


def _median(results: list[Result]) -> Result:
    return sorted(results, key=lambda r: r.rate)[len(results) // 2]


async def compare(args: argparse.Namespace, backend_port: int, proxy_port: int) -> None:
    for keep_alive in (False, True):
        direct: list[Result] = []
        proxied: list[Result] = []
        for _ in range(args.runs):  # alternate, so drift affects both alike
            for target, results in ((("127.0.0.1", backend_port), direct),
                                    ((CLUSTER_IP, proxy_port), proxied)):
                results.append(await load(*target, keep_alive, args.seconds, args.concurrency,
                                          args.max_requests))
        d, p = _median(direct), _median(proxied)
        mode = "keep-alive on " if keep_alive else "keep-alive off"
        print(f"{mode}  direct  {d.rate:8.0f} req/s  p99 {d.p99_ms:6.2f} ms  "
              f"failures {sum(r.failures for r in direct)}")
        print(f"{mode}  proxied {p.rate:8.0f} req/s  p99 {p.p99_ms:6.2f} ms  "
              f"failures {sum(r.failures for r in proxied)}")
        print(f"{mode}  ratio   {p.rate / d.rate:8.2f}x direct throughput (goal >= 0.7)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per run")
    parser.add_argument("--role", choices=["bench", "backend", "proxy"], default="bench")
    parser.add_argument("--backend-port", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.role == "backend":
        eventloop.run(serve_backend(args.port))
        return
    if args.role == "proxy":
        eventloop.run(serve_proxy(args.backend_port, args.port))
        return
    backend_port, proxy_port = free_port(), free_port(CLUSTER_IP)
    backend = start("backend", "--port", str(backend_port))
    try:
        proxy = start("proxy", "--backend-port", str(backend_port), "--port", str(proxy_port))
        try:
            print(f"backend 127.0.0.1:{backend_port}  service {CLUSTER_IP}:{proxy_port}  "
                  f"concurrency {args.concurrency}  {args.runs} runs x {args.seconds}s, median")
            eventloop.run(compare(args, backend_port, proxy_port))
        finally:
            stop(proxy)
    finally:
        stop(backend)


if __name__ == "__main__":
    main()
