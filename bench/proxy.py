"""Service proxy benchmark: prints figures, never passes or fails.

    sudo .venv/bin/python bench/proxy.py [--seconds 2] [--runs 3] [--concurrency 32]

Four paths to one small HTTP backend, measured alternately in the same run:
direct; through a clusterIP of an NftProxy with the socket-level load balancer
(`socket-lb`: an eBPF hook rewrites connect() to the backend, nothing is NATed);
through a clusterIP of an NftProxy without it (`nftables`: the kernel DNATs every
connection); and through a clusterIP served by the user-space proxy (a ProxyTable
in its own process, as on a node). First with keep-alive off (a new TCP connection per
request, as most Service traffic between pods is set up), then on. Each figure
is the median of --runs runs; each run is bounded by --seconds and --max-requests;
a ratio is the median of the ratios within each round, with their range (on a
shared machine the range says how much to trust it). Next to throughput, the CPU
one request costs every process involved (load generator, backend, user-space
proxy; loopback's kernel work runs in their context): contention moves
throughput far more than it moves that cost. Goal: nftables mode (socket-lb
where the kernel allows it) >= 0.95x direct.

Then the programming latency of nftables mode (median of --runs): one endpoint
change with one Service, 1,000 Services in one transaction, 1,000 Services
added, and one endpoint change among those 1,000: the socket-lb maps' update,
the nft write, and both with the conntrack flush and socket drop.

Why a client address per path: all paths end at the same backend, which closes
first and so holds a TIME_WAIT socket per recent (client address, port) pair.
Linux stamps a connection's TCP timestamps with an offset hashed from the
addresses the client sees: 127.0.0.1 -> 127.0.0.1 direct, 127.0.0.1 ->
127.100.250.2 before the DNAT. The client picks its port knowing nothing of the
backend's TIME_WAIT sockets of the other view, so when a DNATed SYN lands on one
made by a direct connection (or the reverse), its timestamp is "older" than the
one remembered, PAWS rejects it (nstat: TcpExtPAWSTimewait), and the client
retransmits after 1 s. Measured on a quiet run with one client address: hundreds
of such 1-second stalls per round, growing round after round, on the direct path
as much as on the DNATed one. It is a property of mixing both views from one
address against one backend within TIME_WAIT's 60 s, not of either path; each
client gets its own address so the figures measure the paths. (A pod that talks
to the same backend both through its Service and directly at a high rate of new
connections meets the same stalls; net.ipv4.tcp_timestamps=2, timestamps without
per-address offsets, removes them.)

As root the whole benchmark runs in a network namespace it creates and deletes
(its table goes with it), entered with `nsenter --net` so the cgroup2 hierarchy
stays visible; without root (or nft, or where the hook cannot be attached) those
paths are not measured and the reason is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.cli import eventloop
from corral.proxy.mode import nftables_unavailable
from corral.proxy.model import Backend, ServicePortKey, ServiceProxySpec
from corral.proxy.nftables import NftProxy
from corral.proxy.socklb import SocketLB, SocketLBError
from corral.proxy.table import ProxyTable

CLUSTER_IP = "127.100.250.1"  # the user-space proxy's
NFT_CLUSTER_IP = "127.100.250.2"  # DNATed by nftables
LB_CLUSTER_IP = "127.100.250.3"  # steered at connect() by the socket-level hook
NFT_TABLE = "corral-bench"
LB_TABLE = "corral-bench-lb"
# Each path's client has its own source address; see "Why a client address per path".
DIRECT_SOURCE, NFT_SOURCE, USERSPACE_SOURCE = "127.0.0.1", "127.0.0.2", "127.0.0.3"
LB_SOURCE = "127.0.0.4"
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h; the socket module does not export it
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


@dataclass(frozen=True)
class Target:
    """Where one path's load goes, and the client address it comes from."""

    host: str
    port: int
    source: str


async def _connect(target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from ``target.source``; the port is still chosen at connect time
    (IP_BIND_ADDRESS_NO_PORT), as for an unbound client."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((target.source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (target.host, target.port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def _one_per_connection(target: Target) -> None:
    reader, writer = await _connect(target)
    writer.write(REQUEST_CLOSE)
    response = await reader.read()
    writer.close()
    if not response.endswith(BODY):
        raise ConnectionError("short response")


async def _keep_alive_worker(target: Target, deadline: float, budget: list[int],
                             latencies: list[float], failures: list[int]) -> None:
    """Requests on one connection; a failed one counts, and a new connection goes on."""
    while time.perf_counter() < deadline and budget[0] > 0:
        try:
            reader, writer = await _connect(target)
        except OSError:
            failures[0] += 1
            continue
        try:
            while time.perf_counter() < deadline and budget[0] > 0:
                budget[0] -= 1
                began = time.perf_counter()
                writer.write(REQUEST_KEEP)
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(len(BODY))
                latencies.append(time.perf_counter() - began)
        except (OSError, asyncio.IncompleteReadError):
            failures[0] += 1
        finally:
            writer.close()


async def _close_worker(target: Target, deadline: float, budget: list[int],
                        latencies: list[float], failures: list[int]) -> None:
    while time.perf_counter() < deadline and budget[0] > 0:
        budget[0] -= 1
        began = time.perf_counter()
        try:
            await _one_per_connection(target)
        except OSError:
            failures[0] += 1
            continue
        latencies.append(time.perf_counter() - began)


async def load(target: Target, keep_alive: bool, seconds: float, concurrency: int,
               max_requests: int) -> Result:
    latencies: list[float] = []
    failures, budget = [0], [max_requests]
    began = time.perf_counter()
    deadline = began + seconds
    if keep_alive:
        workers = [_keep_alive_worker(target, deadline, budget, latencies, failures)
                   for _ in range(concurrency)]
    else:
        workers = [_close_worker(target, deadline, budget, latencies, failures)
                   for _ in range(concurrency)]
    await asyncio.gather(*workers)
    return Result(len(latencies), failures[0], time.perf_counter() - began, latencies)


def _median(results: list[Result]) -> Result:
    return sorted(results, key=lambda r: r.rate)[len(results) // 2]


GOALS = {"socket-lb": 0.95, "nftables": 0.95, "userspace": 0.7}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes doing the work (load generator, backend,
    user-space proxy). Loopback packets are mostly processed in their sender's
    context, so the kernel's NAT and forwarding show up here too."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


async def compare(args: argparse.Namespace, targets: dict[str, Target],
                  pids: list[int]) -> None:
    """Rates per target, and each target's ratio to direct: the median of the ratios
    within one round (the targets run back to back), which drift in the machine's
    load (other processes) cancels out of far better than a ratio of medians.

    On a shared machine throughput swings with everyone else's load; CPU per
    request does not (much): `cpu` is what one request costs all the processes
    involved, and its ratio is direct's cost over the target's (1.0 = as cheap)."""
    for keep_alive in (False, True):
        results: dict[str, list[Result]] = {name: [] for name in targets}
        costs: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.runs):  # alternate, so drift affects all alike
            for name, target in targets.items():
                before = cpu_seconds(pids)
                result = await load(target, keep_alive, args.seconds, args.concurrency,
                                    args.max_requests)
                results[name].append(result)
                costs[name].append((cpu_seconds(pids) - before) / max(result.requests, 1))
        mode = "keep-alive on " if keep_alive else "keep-alive off"
        for name, runs in results.items():
            m = _median(runs)
            cost = sorted(costs[name])[len(runs) // 2]
            line = (f"{mode}  {name:9} {m.rate:7.0f} req/s  p99 {m.p99_ms:6.1f} ms  "
                    f"cpu {1e6 * cost:5.0f} us/req  failures {sum(r.failures for r in runs)}")
            if name != "direct":
                rates = [r.rate for r in runs], [r.rate for r in results["direct"]]
                cheap = costs["direct"], costs[name]
                line += (f"\n{mode}  {'':9} throughput {_ratio(*rates)}   cpu per request "
                         f"{_ratio(*cheap)}   (goal >= {GOALS[name]}x direct)")
            print(line, flush=True)


def _ratio(ours: list[float], direct: list[float]) -> str:
    """Median of the per-round ratios ours/direct, with their range."""
    ratios = sorted(o / d for o, d in zip(ours, direct, strict=True) if d)
    return f"{ratios[len(ratios) // 2]:4.2f}x (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})"


# -- nftables programming latency ------------------------------------------------

async def _timed_apply(proxy: NftProxy, services: dict[ServicePortKey, ServiceProxySpec],
                       backends: dict[ServicePortKey, list[Backend]]
                       ) -> tuple[float, float, float]:
    """(seconds of the socket-lb maps' update, of the nft write, and of the whole
    apply including the conntrack flush and socket drop)."""
    began = time.perf_counter()
    await proxy.apply(services, backends)
    await proxy.flushed()
    return proxy.last_socket_lb_seconds, proxy.last_write_seconds, time.perf_counter() - began


def _bulk(count: int, port: int, moved: int = -1) -> tuple[
        dict[ServicePortKey, ServiceProxySpec], dict[ServicePortKey, list[Backend]]]:
    """``count`` Services of two endpoints each; Service ``moved`` has another second one."""
    keys = [ServicePortKey("bench", f"svc-{i}") for i in range(count)]
    services = {k: ServiceProxySpec(f"127.101.{i // 250}.{i % 250 + 1}", 80, node_port=30000 + i)
                for i, k in enumerate(keys)}
    backends = {k: [Backend("127.0.0.1", port), Backend(f"127.0.0.{3 if i == moved else 2}", port)]
                for i, k in enumerate(keys)}
    return services, backends


async def programming(args: argparse.Namespace, proxy: NftProxy, port: int,
                      services: dict[ServicePortKey, ServiceProxySpec],
                      backends: dict[ServicePortKey, list[Backend]], run_dir: Path) -> None:
    """How long until a change is in effect, median of runs: in the socket-lb maps
    (when ``proxy`` has them), in the nft table, and the whole apply with its drops."""
    timings: dict[str, list[tuple[float, float, float]]] = {
        "endpoint change, 1 Service": [], "1,000 Services, whole-table write": [],
        "1,000 Services added, one change": [], "endpoint change among 1,000 Services": []}
    key = next(iter(services))
    many, many_backends = _bulk(1000, port)
    _, moved_backends = _bulk(1000, port, moved=7)
    for run in range(args.runs):
        moved = {key: [Backend(f"127.0.0.{2 + run % 2}", port)]}
        timings["endpoint change, 1 Service"].append(await _timed_apply(proxy, services, moved))
        fresh = NftProxy(f"{NFT_TABLE}-{run}", run_dir=run_dir)  # its first write is whole
        timings["1,000 Services, whole-table write"].append(
            await _timed_apply(fresh, many, many_backends))
        await fresh.close()
        timings["1,000 Services added, one change"].append(
            await _timed_apply(proxy, {**services, **many}, {**backends, **many_backends}))
        timings["endpoint change among 1,000 Services"].append(
            await _timed_apply(proxy, {**services, **many}, {**backends, **moved_backends}))
        await proxy.apply(services, backends)
    for what, values in timings.items():
        maps, nft, total = (sorted(v[i] for v in values)[len(values) // 2] for i in range(3))
        lb = (f"socket-lb maps {1000 * maps:6.1f} ms  " if proxy.socket_lb is not None
              and what != "1,000 Services, whole-table write" else " " * 26)
        print(f"nftables programming: {what:38} {lb}nft {1000 * nft:7.1f} ms in effect  "
              f"{1000 * total:7.1f} ms with conntrack flush / socket drop", flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def _socket_lb(nft_problem: str | None) -> tuple[SocketLB | None, str | None]:
    if nft_problem is not None:
        return None, nft_problem
    try:
        return SocketLB.open(), None
    except SocketLBError as err:
        return None, str(err)


async def measure(args: argparse.Namespace, backend_port: int, proxy_port: int,
                  nft_problem: str | None, pids: list[int]) -> None:
    targets = {"direct": Target("127.0.0.1", backend_port, DIRECT_SOURCE)}
    key = ServicePortKey("bench", "web")
    backends = {key: [Backend("127.0.0.1", backend_port)]}
    lb, lb_problem = _socket_lb(nft_problem)
    with tempfile.TemporaryDirectory() as run_dir:
        proxies: list[NftProxy] = []
        try:
            if lb is not None:
                proxies.append(NftProxy(LB_TABLE, run_dir=Path(run_dir), socket_lb=lb))
                await proxies[-1].apply({key: ServiceProxySpec(LB_CLUSTER_IP, 80)}, backends)
                targets["socket-lb"] = Target(LB_CLUSTER_IP, 80, LB_SOURCE)
            else:
                print(f"socket-lb: not measured ({lb_problem})")
            if nft_problem is None:
                proxies.append(NftProxy(NFT_TABLE, run_dir=Path(run_dir)))
                await proxies[-1].apply({key: ServiceProxySpec(NFT_CLUSTER_IP, 80)}, backends)
                targets["nftables"] = Target(NFT_CLUSTER_IP, 80, NFT_SOURCE)
            else:
                print(f"nftables: not measured ({nft_problem})")
            targets["userspace"] = Target(CLUSTER_IP, proxy_port, USERSPACE_SOURCE)
            await compare(args, targets, pids)
            if proxies:  # the socket-lb one when there is one: it writes both
                cluster_ip = LB_CLUSTER_IP if lb is not None else NFT_CLUSTER_IP
                await programming(args, proxies[0], backend_port,
                                  {key: ServiceProxySpec(cluster_ip, 80)}, backends,
                                  Path(run_dir))
        finally:
            for proxy in proxies:
                await proxy.close()
            if lb is not None and not proxies:
                lb.close()


def inside(args: argparse.Namespace) -> None:
    """The benchmark proper (in its own network namespace when root)."""
    nft_problem = nftables_unavailable()
    backend_port, proxy_port = free_port(), free_port(CLUSTER_IP)
    backend = start("backend", "--port", str(backend_port))
    try:
        proxy = start("proxy", "--backend-port", str(backend_port), "--port", str(proxy_port))
        try:
            print(f"backend 127.0.0.1:{backend_port}  socket-lb {LB_CLUSTER_IP}:80  "
                  f"nftables {NFT_CLUSTER_IP}:80  userspace {CLUSTER_IP}:{proxy_port}  "
                  f"concurrency {args.concurrency}  "
                  f"{args.runs} runs x {args.seconds}s, median", flush=True)
            pids = [os.getpid(), backend.pid, proxy.pid]
            eventloop.run(measure(args, backend_port, proxy_port, nft_problem, pids))
        finally:
            stop(proxy)
    finally:
        stop(backend)


def in_own_namespace(argv: list[str]) -> None:
    """Run this script again inside a network namespace made for it, then delete it."""
    name = f"corral-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        print(f"network namespace {name} (deleted at the end)", flush=True)
        # nsenter, not `ip netns exec`: that one hides the cgroup2 hierarchy (a /sys
        # of its own), and the socket-level hook attaches there.
        subprocess.run([shutil.which("nsenter") or "nsenter", f"--net=/run/netns/{name}",
                        sys.executable, __file__, *argv, "--role", "inside"], check=False)
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per run")
    parser.add_argument("--role", choices=["bench", "inside", "backend", "proxy"],
                        default="bench")
    parser.add_argument("--backend-port", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.role == "backend":
        eventloop.run(serve_backend(args.port))
    elif args.role == "proxy":
        eventloop.run(serve_proxy(args.backend_port, args.port))
    elif args.role == "bench" and os.geteuid() == 0 and shutil.which("ip"):
        in_own_namespace(sys.argv[1:])
    else:
        inside(args)


if __name__ == "__main__":
    main()
