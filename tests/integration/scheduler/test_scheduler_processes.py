"""Two `corral scheduler` processes against one master (its own scheduler
disabled): racing, they never over-commit a node nor bind a pod twice; with
--leader-elect one schedules at a time and the other takes over when it stops
or dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.api.quantity import bytes_value, cpu_millis
from corral.client.http import Client
from tests.cluster import Master, stop_process
from tests.integration.scheduler.helpers import Obj, pod
from tests.manifests import node
from tests.poll import eventually

NODES = 10
NODE_CPU, NODE_MEMORY, NODE_PODS = "2", "2Gi", 24
PODS = 200
SHAPES = (("100m", "64Mi"), ("150m", "128Mi"), ("200m", "64Mi"), ("250m", "96Mi"))


class SchedulerProcess:
    def __init__(self, master: Master, identity: str, *flags: str) -> None:
        self.identity = identity
        self.log_path = master.data_dir / f"{identity}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "corral.cli.main", "scheduler", "--kubeconfig",
                 str(master.kubeconfig), "--identity", identity, *flags],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        stop_process(self.proc)

    def kill(self) -> None:
        """SIGKILL, as a crash: the Lease is not released."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def master(tmp_path: Path) -> Iterator[Master]:
    m = Master(tmp_path / "master",
               extra_args=["--disable", "scheduler", "--disable", "controllers"]).start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def schedulers(master: Master) -> Iterator[list[SchedulerProcess]]:
    started: list[SchedulerProcess] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.stop()


def requests_of(p: Obj) -> tuple[int, int]:
    req = p["spec"]["containers"][0]["resources"]["requests"]
    return cpu_millis(req["cpu"]), bytes_value(req["memory"])


def free_per_node(pods: list[Obj]) -> dict[str, list[int]]:
    free = {f"n{i}": [cpu_millis(NODE_CPU), bytes_value(NODE_MEMORY), NODE_PODS]
            for i in range(NODES)}
    for p in pods:
        if p["spec"].get("nodeName"):
            cpu, memory = requests_of(p)
            left = free[p["spec"]["nodeName"]]
            left[0] -= cpu
            left[1] -= memory
            left[2] -= 1
    return free


def fits_somewhere(p: Obj, free: dict[str, list[int]]) -> bool:
    cpu, memory = requests_of(p)
    return any(f[0] >= cpu and f[1] >= memory and f[2] >= 1 for f in free.values())


async def test_racing_schedulers_never_over_commit(master: Master, client: Client,
                                                   schedulers: list[SchedulerProcess]) -> None:
    for i in range(NODES):
        await client.create(node(f"n{i}", cpu=NODE_CPU, memory=NODE_MEMORY, pods=NODE_PODS))
    schedulers.append(SchedulerProcess(master, "racer-a"))
    schedulers.append(SchedulerProcess(master, "racer-b"))
    for batch in range(0, PODS, 20):
        await asyncio.gather(*(client.create(pod(f"p{i}", *SHAPES[i % len(SHAPES)]))
                               for i in range(batch, min(batch + 20, PODS))))

    async def settled() -> list[Obj] | None:
        # Done when every pod is bound or fits on no node: capacity never goes unused.
        pods = (await client.list("Pod", "default")).items
        free = free_per_node(pods)
        if any(not p["spec"].get("nodeName") and fits_somewhere(p, free) for p in pods):
            return None
        return pods

    pods = await eventually(settled, timeout=120, interval=0.5, what="scheduling settled")
    for name, (cpu, memory, count) in free_per_node(pods).items():
        assert cpu >= 0 and memory >= 0 and count >= 0, f"{name} over-committed"
    bound = [p for p in pods if p["spec"].get("nodeName")]
    assert len(bound) >= PODS // 2  # the demand is ~1.75x the cluster's cpu

    async def one_scheduled_event_each() -> dict[str, list[Obj]] | None:
        events = (await client.list("Event", "default",
                                    field_selector="reason=Scheduled")).items
        by_pod: dict[str, list[Obj]] = defaultdict(list)
        for event in events:
            by_pod[event["involvedObject"]["name"]].append(event)
        return by_pod if len(by_pod) == len(bound) else None

    by_pod = await eventually(one_scheduled_event_each, what="a Scheduled event per bound pod")
    for name, events in by_pod.items():
        assert len(events) == 1 and events[0]["count"] == 1, f"{name} bound twice: {events}"
    for proc in schedulers:
        assert proc.proc.poll() is None, proc.log()


async def lease_holder(client: Client) -> str:
    try:
        lease = await client.get("Lease", "corral-scheduler", "kube-system")
    except Exception:  # noqa: BLE001 - not created yet
        return ""
    return str(lease.get("spec", {}).get("holderIdentity") or "")


async def bound_by(client: Client, names: list[str]) -> set[str]:
    """The reportingInstance of the Scheduled events of ``names`` (once all bound)."""
    async def all_scheduled() -> set[str] | None:
        events = (await client.list("Event", "default",
                                    field_selector="reason=Scheduled")).items
        mine = [e for e in events if e["involvedObject"]["name"] in names]
        if len({e["involvedObject"]["name"] for e in mine}) < len(names):
            return None
        return {e["reportingInstance"] for e in mine}

    return await eventually(all_scheduled, what=f"{names} scheduled")


async def test_leader_election_hands_over(master: Master, client: Client,
                                          schedulers: list[SchedulerProcess]) -> None:
    await client.create(node("n0"))
    flags = ("--leader-elect", "--lease-duration", "2", "--renew-deadline", "1.5",
             "--retry-period", "0.2")
    first = SchedulerProcess(master, "sched-a", *flags)
    schedulers.append(first)
    assert await eventually(lambda: lease_holder(client), what="a leader") == "sched-a"
    second = SchedulerProcess(master, "sched-b", *flags)
    schedulers.append(second)
    for i in range(3):
        await client.create(pod(f"a{i}"))
    assert await bound_by(client, [f"a{i}" for i in range(3)]) == {"sched-a"}

    first.stop()  # SIGTERM: the leader gives the Lease up on its way out

    async def b_leads() -> bool:
        return await lease_holder(client) == "sched-b"

    await eventually(b_leads, what="sched-b leading")
    for i in range(3):
        await client.create(pod(f"b{i}"))
    assert await bound_by(client, [f"b{i}" for i in range(3)]) == {"sched-b"}

    third = SchedulerProcess(master, "sched-c", *flags)
    schedulers.append(third)
    second.kill()  # a crash: sched-c waits out the lease duration, then takes over

    async def c_leads() -> bool:
        return await lease_holder(client) == "sched-c"

    await eventually(c_leads, what="sched-c leading")
    for i in range(3):
        await client.create(pod(f"c{i}"))
    assert await bound_by(client, [f"c{i}" for i in range(3)]) == {"sched-c"}
