"""Pod startup figures: N pods pre-bound across 3 real agents, create → Running.

Two phases, each on a fresh cluster, as Kubernetes' scalability tests separate
them (a saturation phase for throughput, latency pods for the startup SLI):

    burst    all N creates sent as fast as the API takes them (--concurrency at
             once): pods/s from the first create to the last pod Running, and
             the latency each pod saw, which in a burst larger than the machine
             can start at once is mostly time spent queued behind the others
    paced    N creates at a steady --rate pods/s (an open-loop schedule: the
             i-th is sent at start + i/rate whatever happened before): the
             latency a pod sees while the cluster keeps up with its load

    latency      per pod: from its create request being sent to the watch event
                 that first shows it Running (p50/p99); a create the API's fairness
                 answers 429 is sent again after its Retry-After (as client-go
                 does), and the wait counts in its latency
    baseline     the same N `/bin/true` launched by `xargs -P` on this box
    memory       private memory (USS) of the per-container shims while the pods run

Each figure is the median of --runs runs. Prints figures; never pass/fail.
Goal: p99 ≤ 0.5 s. The bench speaks HTTP through the lean client of
bench/loadgen.py (httpx cost a third of a core here, taken from the cluster it
measures). Every process it starts (master, agents, shims, pods) is stopped at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import Connection, watch_lines
from corral.agent.runtime.shim import SHIM_NAME
from corral.objects import status
from tests.cluster import Agent, Master, remove_node_homes, stop_on_sigterm

NAMESPACE = "default"
SHIM = "corral.agent.runtime.shim"  # the fallback shim's module: one interpreter per shim
PODS_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods"


# --no-token: pods without a ServiceAccount token (no TokenRequest, no mount
# namespace), to see what the token costs a pod's start.
AUTOMOUNT = {"value": True}


def _pod(i: int, node: str) -> bytes:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"start-{i}", "labels": {"bench": "startup"}},
        "spec": {"nodeName": node, "restartPolicy": "Never",
                 "automountServiceAccountToken": AUTOMOUNT["value"],
                 "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": "none",
                                 "command": ["sleep", "600"]}]}}).encode()


async def _watch_running(conn: Connection, total: int, seen: dict[str, float],
                         ready: asyncio.Event) -> None:
    lines = watch_lines(conn, f"{PODS_PATH}?watch=1&labelSelector=bench%3Dstartup"
                              "&allowWatchBookmarks=false")
    ready.set()
    async for line in lines:
        if b'"Running"' not in line:
            continue
        obj = json.loads(line)["object"]
        name = obj["metadata"]["name"]
        if status(obj).get("phase") == "Running" and name not in seen:
            seen[name] = time.perf_counter()
            if len(seen) >= total:
                return


async def run_pods(m: Master, nodes: list[str], total: int, concurrency: int,
                   rate: float = 0.0) -> dict[str, float]:
    """Create `total` pods with `concurrency` creators; with `rate`, the i-th create
    is not sent before start + i/rate; with rate 0, as fast as the API takes them."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    url, token, ca = m.url, m.token, str(m.ca_path)
    watch_conn = await Connection.open(url, token, ca)
    conns = [await Connection.open(url, token, ca) for _ in range(concurrency)]
    try:
        ready = asyncio.Event()
        watcher = asyncio.create_task(_watch_running(watch_conn, total, seen, ready))
        await ready.wait()
        await asyncio.sleep(0.2)  # the watch request is in before the first create
        queue = list(range(total))

        async def creator(conn: Connection) -> None:
            while queue:
                i = queue.pop(0)
                if rate:
                    await asyncio.sleep(start + i / rate - time.perf_counter())
                sent[f"start-{i}"] = time.perf_counter()
                status, body = await conn.send("POST", PODS_PATH,
                                               _pod(i, nodes[i % len(nodes)]))
                assert status == 201, body

        start = time.perf_counter()
        await asyncio.gather(*(creator(c) for c in conns))
        await asyncio.wait_for(watcher, timeout=600)
        elapsed = max(seen.values()) - start
        throttled = sum(c.throttled for c in conns)
    finally:
        for conn in (watch_conn, *conns):
            conn.close()
    latencies = sorted(seen[n] - sent[n] for n in sent)
    return {"p50": statistics.median(latencies),
            "p99": latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)],
            "max": latencies[-1], "pods_per_s": total / elapsed, "elapsed": elapsed,
            "throttled": throttled}


def shim_memory() -> tuple[int, float]:
    """(shim count, mean private memory (USS) in MiB) of the running shims: forked
    shims share the launcher's pages, so RSS would count those once per shim."""
    uss = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") != SHIM_NAME and SHIM not in cmdline:
            continue
        try:
            uss.append(proc.memory_full_info().uss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return len(uss), (statistics.mean(uss) / 2**20 if uss else 0.0)


def baseline(total: int, parallel: int) -> float:
    """Seconds for `xargs -P` to run `total` /bin/true."""
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", str(parallel), "-n", "1", "/bin/true"],
                   input="\n".join(["x"] * total), text=True, check=True)
    return time.perf_counter() - start


def wait_quiet(busy_percent: float = 15.0, limit: float = 60.0) -> None:
    """Wait (up to `limit` s) until the machine is nearly idle: tearing a cluster
    down leaves the kernel reaping processes and cgroups for seconds, which would
    land on the next phase's figures."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and psutil.cpu_percent(interval=0.5) > busy_percent:
        pass


def run_cluster(work: Path, agents: int, pods: int, concurrency: int,
                rate: float) -> tuple[dict[str, float], tuple[int, float]]:
    """One phase on a fresh cluster: its figures, and the shims' memory."""
    wait_quiet()
    master = Master(work / "master").start()
    nodes = [Agent(master, f"bench-{i}", work / f"agent-{i}", f"127.0.1.{40 + i}",
                   ["--pods", str(pods)]) for i in range(1, agents + 1)]
    try:
        for agent in nodes:
            agent.start()
        figures = asyncio.run(run_pods(master, [a.name for a in nodes], pods, concurrency,
                                       rate))
        return figures, shim_memory()
    finally:
        for agent in nodes:
            agent.cleanup()
        master.stop()
        remove_node_homes()  # agents' state dirs moved out of the 0700 temp dir


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _latency_line(name: str, f: dict[str, float]) -> str:
    return (f"{name:<7} create → Running  p50 {f['p50'] * 1000:5.0f} ms  p99 "
            f"{f['p99'] * 1000:5.0f} ms  max {f['max'] * 1000:5.0f} ms  "
            f"{f['pods_per_s']:5.1f} pods/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0,
                        help="pods/s of the paced phase")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-token", action="store_true",
                        help="pods with automountServiceAccountToken: false")
    args = parser.parse_args()
    AUTOMOUNT["value"] = not args.no_token
    burst: list[dict[str, float]] = []
    paced: list[dict[str, float]] = []
    raw: list[float] = []
    memory: list[tuple[int, float]] = []
    for run in range(args.runs):
        for rate, results in ((0.0, burst), (args.rate, paced)):
            with tempfile.TemporaryDirectory(prefix="corral-bench-startup-") as tmp:
                figures, shims = run_cluster(Path(tmp), args.agents, args.pods,
                                             args.concurrency, rate)
            results.append(figures)
            memory.append(shims)
        raw.append(baseline(args.pods, args.concurrency))
        print(f"  run {run + 1}: burst p99 {burst[-1]['p99'] * 1000:.0f} ms "
              f"{burst[-1]['pods_per_s']:.1f} pods/s, paced p99 "
              f"{paced[-1]['p99'] * 1000:.0f} ms", flush=True)
    b, p = _median(burst), _median(paced)
    raw_rate = args.pods / statistics.median(raw)
    shims = max(count for count, _ in memory)
    mean_mib = statistics.median(mib for _, mib in memory)
    print(f"pods: {args.pods} across {args.agents} agents, median of {args.runs} runs")
    print(_latency_line("burst", b) + f"  ({args.concurrency} creates in flight; "
          f"{b['throttled']:.0f} answered 429 and sent again after Retry-After)")
    print(_latency_line("paced", p) + f"  (creates at {args.rate:g} pods/s; "
          f"{p['throttled']:.0f} throttled)")
    print(f"baseline {raw_rate:.0f} /bin/true per s by xargs -P {args.concurrency}; burst "
          f"throughput is {raw_rate / b['pods_per_s']:.0f}x slower than raw process launch")
    print(f"shims    {shims} running, mean private {mean_mib:.1f} MiB "
          f"({shims * mean_mib:.0f} MiB in all)")


if __name__ == "__main__":
    stop_on_sigterm()
    main()
