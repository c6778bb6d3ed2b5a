"""Pod startup figures: N pods pre-bound across 3 real agents, create → Running.

    latency      per pod: from its create request being sent to the watch event
                 that first shows it Running (p50/p99)
    throughput   pods/s from the first create to the last pod Running
    baseline     the same N `/bin/true` launched by `xargs -P` on this box
    memory       private memory (USS) of the per-container shims while the pods run

Prints figures; never pass/fail. Goal: p99 ≤ 0.5 s. Every process it starts
(master, agents, shims, pods) is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corral.agent.runtime.shim import SHIM_NAME
from tests.cluster import Agent, Master

NAMESPACE = "default"
SHIM = "corral.agent.runtime.shim"  # the fallback shim's module: one interpreter per shim


def _client(m: Master, connections: int) -> httpx.AsyncClient:
    ctx = ssl.create_default_context(cafile=str(m.ca_path))
    return httpx.AsyncClient(base_url=m.url, verify=ctx,
                             headers={"Authorization": f"Bearer {m.token}"},
                             limits=httpx.Limits(max_connections=connections + 2),
                             timeout=httpx.Timeout(120.0, read=None))


def _pod(i: int, node: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"start-{i}", "labels": {"bench": "startup"}},
            "spec": {"nodeName": node, "restartPolicy": "Never",
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "none", "command": ["sleep", "600"]}]}}


async def _watch_running(c: httpx.AsyncClient, total: int, seen: dict[str, float],
                         ready: asyncio.Event) -> None:
    params = {"watch": "1", "labelSelector": "bench=startup"}
    async with c.stream("GET", f"/api/v1/namespaces/{NAMESPACE}/pods", params=params) as r:
        ready.set()
        async for line in r.aiter_lines():
            if not line:
                continue
            obj = json.loads(line)["object"]
            name = obj["metadata"]["name"]
            if (obj.get("status") or {}).get("phase") == "Running" and name not in seen:
                seen[name] = time.perf_counter()
                if len(seen) >= total:
                    return


async def run_pods(m: Master, nodes: list[str], total: int, concurrency: int) -> dict[str, float]:
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    async with _client(m, concurrency) as c:
        ready = asyncio.Event()
        watcher = asyncio.create_task(_watch_running(c, total, seen, ready))
        await ready.wait()
        queue = list(range(total))

        async def creator() -> None:
            while queue:
                i = queue.pop(0)
                sent[f"start-{i}"] = time.perf_counter()
                r = await c.post(f"/api/v1/namespaces/{NAMESPACE}/pods",
                                 json=_pod(i, nodes[i % len(nodes)]))
                assert r.status_code == 201, r.text

        start = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(concurrency)))
        await asyncio.wait_for(watcher, timeout=600)
        elapsed = max(seen.values()) - start
    latencies = sorted(seen[n] - sent[n] for n in sent)
    return {"p50": statistics.median(latencies),
            "p99": latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)],
            "max": latencies[-1], "pods_per_s": total / elapsed, "elapsed": elapsed}


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


async def delete_all(m: Master) -> None:
    async with _client(m, 4) as c:
        await c.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods",
                        params={"labelSelector": "bench=startup"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-startup-") as tmp:
        master = Master(Path(tmp) / "master").start()
        agents = [Agent(master, f"bench-{i}", Path(tmp) / f"agent-{i}", f"127.0.1.{40 + i}",
                        ["--pods", str(args.pods)]) for i in range(1, args.agents + 1)]
        try:
            for agent in agents:
                agent.start()
            figures = asyncio.run(run_pods(master, [a.name for a in agents], args.pods,
                                           args.concurrency))
            shims, mean_mib = shim_memory()
            asyncio.run(delete_all(master))
        finally:
            for agent in agents:
                agent.cleanup()
            master.stop()
    raw = baseline(args.pods, args.concurrency)
    raw_rate = args.pods / raw
    print(f"pods: {args.pods} across {args.agents} agents (create concurrency "
          f"{args.concurrency})")
    print(f"create → Running  p50 {figures['p50'] * 1000:.0f} ms  p99 "
          f"{figures['p99'] * 1000:.0f} ms  max {figures['max'] * 1000:.0f} ms")
    print(f"throughput        {figures['pods_per_s']:.1f} pods/s "
          f"({figures['elapsed']:.1f} s for all)")
    print(f"baseline          {raw_rate:.0f} /bin/true per s by xargs -P {args.concurrency} "
          f"({raw:.2f} s)")
    print(f"ratio             {raw_rate / figures['pods_per_s']:.0f}x slower than raw "
          f"process launch")
    print(f"shims             {shims} running, mean private {mean_mib:.1f} MiB "
          f"({shims * mean_mib:.0f} MiB in all)")


if __name__ == "__main__":
    main()
