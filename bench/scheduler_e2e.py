"""End-to-end scheduling figures: pods through the real API onto hollow nodes.

Hollow nodes are Node objects posted through the API with allocatable and a
Ready condition (what an agent posts), so the scheduler does all its real work —
informers, the core, node reservations, bindings, events — and nothing runs.

    in-master   `corral master` with its in-process scheduler: N pods created
                (50 requests in flight); pods/s from the first create to the
                last pod bound, and pods/s of the creates alone (the API's share)
    backlog     the master without a scheduler, N pods created first, then a
                `corral scheduler` process started: pods/s from its start to
                the last pod bound (start-up, list and sync included)

Median of --runs runs, each on a fresh master. Prints figures; never pass/fail.
Every process it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corral.client.http import Client
from tests.cluster import Master, stop_on_sigterm, stop_process

SHAPES = (("100m", "128Mi"), ("250m", "256Mi"), ("500m", "512Mi"), ("50m", "64Mi"))
IN_FLIGHT = 50


def hollow_node(name: str) -> dict[str, object]:
    resources = {"cpu": "64", "memory": "256Gi", "pods": "500"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def bench_pod(i: int) -> dict[str, object]:
    cpu, memory = SHAPES[i % len(SHAPES)]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"bench-{i}", "labels": {"app": f"app-{i % 20}"}},
            "spec": {"containers": [{"name": "c", "image": "none", "command": ["sleep", "1"],
                                     "resources": {"requests": {"cpu": cpu,
                                                                "memory": memory}}}]}}


async def create_pods(client: Client, count: int) -> float:
    """Create ``count`` pods, IN_FLIGHT at a time; returns the seconds it took."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> None:
        async with gate:
            await client.create(bench_pod(i))

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started


async def wait_all_bound(client: Client) -> None:
    while (await client.list("Pod", "default", field_selector="spec.nodeName=",
                             limit=1)).items:
        await asyncio.sleep(0.02)


async def in_master_run(base: Path, nodes: int, pods: int) -> tuple[float, float]:
    master = Master(base, extra_args=["--disable", "controllers"]).start()
    try:
        async with Client.from_kubeconfig(master.kubeconfig) as client:
            for i in range(nodes):
                await client.create(hollow_node(f"hollow-{i}"))
            await asyncio.sleep(1.0)  # the scheduler's informers have the nodes
            started = time.perf_counter()
            create_seconds = await create_pods(client, pods)
            await wait_all_bound(client)
            return pods / (time.perf_counter() - started), pods / create_seconds
    finally:
        master.stop()


def start_scheduler(master: Master, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "corral.cli.main", "scheduler", "--kubeconfig",
             str(master.kubeconfig)], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)


async def backlog_run(base: Path, nodes: int, pods: int) -> float:
    master = Master(base, extra_args=["--disable", "scheduler", "--disable",
                                      "controllers"]).start()
    scheduler: subprocess.Popen[bytes] | None = None
    try:
        async with Client.from_kubeconfig(master.kubeconfig) as client:
            for i in range(nodes):
                await client.create(hollow_node(f"hollow-{i}"))
            await create_pods(client, pods)
            started = time.perf_counter()
            scheduler = start_scheduler(master, base / "scheduler.log")
            await wait_all_bound(client)
            return pods / (time.perf_counter() - started)
    finally:
        if scheduler is not None:
            stop_process(scheduler)
        master.stop()


async def main(args: argparse.Namespace) -> None:
    bound, created, backlog = [], [], []
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        for run in range(args.runs):
            rate, create_rate = await in_master_run(Path(tmp) / f"m{run}", args.nodes,
                                                    args.pods)
            bound.append(rate)
            created.append(create_rate)
            backlog.append(await backlog_run(Path(tmp) / f"b{run}", args.nodes, args.pods))
            print(f"run {run + 1}: in-master {rate:.0f} pods/s bound "
                  f"(creates alone {create_rate:.0f}/s); backlog {backlog[-1]:.0f} pods/s",
                  flush=True)
    print(f"{args.pods} pods on {args.nodes} hollow nodes, median of {args.runs} runs:")
    print(f"  in-master  {statistics.median(bound):7.0f} pods/s bound, first create to last "
          f"bind (creates alone: {statistics.median(created):.0f}/s)")
    print(f"  backlog    {statistics.median(backlog):7.0f} pods/s bound by a `corral "
          "scheduler` process, from its start")


if __name__ == "__main__":
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
