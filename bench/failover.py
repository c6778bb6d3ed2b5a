"""Failover of the control plane: 3 masters on a 3-member etcd, under write load.

    per round, with W clients creating ConfigMaps through every master:
      kill -9 the master leading the scheduler (or the etcd raft leader), then
        write        s until the first create SENT after the kill is acknowledged
        schedule     s until a pod created after the kill is bound
        controllers  s until a Deployment created after the kill has its pod
        lost         acknowledged creates missing afterwards (must be 0)
      then start what was killed again and wait until it is back

Then API writes/s with the same W clients on one master over SQLite and one
over the etcd. Prints the figures of each round and the median of --rounds
(default 5); never pass/fail. Goal: <= 5 s to writes and to scheduling (Mesos
measured 4-8 s, Borg ~10 s, Kubernetes' default lease is 15 s). Every process
it starts is stopped at the end.

    .venv/bin/python bench/failover.py [--rounds 5] [--writers 8] [--lease 4]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corral.api.errors import APIError
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj
from tests.cluster import EtcdCluster, Master, stop_on_sigterm
from tests.integration.ha.conftest import HA, create_acked

NS = "default"
TIMEOUT = 120.0


@dataclass
class Round:
    write: float
    schedule: float
    controllers: float
    lost: int

    def line(self) -> str:
        return (f"write {self.write:5.2f} s   schedule {self.schedule:5.2f} s   "
                f"controllers {self.controllers:5.2f} s   lost {self.lost}")


class Load:
    """W tasks creating ConfigMaps; (sent, acknowledged) times of each ack."""

    def __init__(self, client: Client, prefix: str, writers: int) -> None:
        self.client = client
        self.acked: dict[str, tuple[float, float]] = {}
        self._stop = False
        self._tasks = [asyncio.create_task(self._write(f"{prefix}-{w}")) for w in range(writers)]

    async def _write(self, prefix: str) -> None:
        i = 0
        while not self._stop:
            name, sent = f"{prefix}-{i}", time.monotonic()
            try:
                await self.client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": name}}, NS)
                self.acked[name] = (sent, time.monotonic())
            except (APIError, ServerUnreachable):
                await asyncio.sleep(0.02)
            i += 1

    def first_ack_sent_after(self, t0: float) -> float | None:
        acks = [ack for sent, ack in self.acked.values() if sent > t0]
        return min(acks) if acks else None

    async def stop(self) -> int:
        """Stop; the number of acknowledged creates that are missing."""
        self._stop = True
        await asyncio.gather(*self._tasks)
        present = {cm["metadata"]["name"] for cm in
                   (await self.client.list_all("ConfigMap", NS)).items}
        return sum(1 for name in self.acked if name not in present)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> float:
    """Poll until ``check`` is true; the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await check():
                return time.monotonic()
        except (APIError, ServerUnreachable):
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError("not reached in time")


def pod(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "x", "command": ["sleep", "600"],
                                     "resources": {"requests": {"cpu": "1m"}}}]}}


def deployment(name: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"fo": name}},
                     "template": {"metadata": {"labels": {"fo": name}},
                                  "spec": pod("x")["spec"]}}}


async def one_round(ha: HA, client: Client, tag: str, kill: Callable[[], None],
                    writers: int) -> Round:
    load = Load(client, f"{tag}-cm", writers)
    await until(lambda: _true(len(load.acked) >= 50))
    kill()
    t0 = time.monotonic()
    await create_acked(client, pod(f"{tag}-pod"))
    await create_acked(client, deployment(f"{tag}-deploy"))

    async def bound() -> bool:
        return bool((await client.get("Pod", f"{tag}-pod", NS))["spec"].get("nodeName"))

    async def deploy_has_pod() -> bool:
        pods = await client.list("Pod", NS, label_selector=f"fo={tag}-deploy")
        return len(pods.items) >= 1

    scheduled = await until(bound)
    acted = await until(deploy_has_pod)
    await until(lambda: _true(load.first_ack_sent_after(t0) is not None))
    first_write = load.first_ack_sent_after(t0)
    assert first_write is not None
    lost = await load.stop()
    return Round(first_write - t0, scheduled - t0, acted - t0, lost)


async def _true(value: bool) -> bool:
    return value


async def master_rounds(ha: HA, rounds: int, writers: int) -> list[Round]:
    results = []
    for r in range(rounds):
        ha.heal()
        async with ha.client() as probe:
            leader = await ha.leader(probe)
        async with ha.client(last=leader) as client:
            results.append(await one_round(ha, client, f"m{r}", leader.kill, writers))
        print(f"  kill -9 leading master, round {r + 1}: {results[-1].line()}", flush=True)
    ha.heal()
    return results


async def etcd_rounds(ha: HA, rounds: int, writers: int) -> list[Round]:
    results = []
    for r in range(rounds):
        ha.heal()
        async with ha.client() as client:
            victim = ha.etcd.leader()
            results.append(await one_round(ha, client, f"e{r}",
                                           lambda v=victim: ha.etcd.kill(v), writers))
        print(f"  kill -9 etcd leader,     round {r + 1}: {results[-1].line()}", flush=True)
    ha.heal()
    return results


def summary(name: str, rounds: list[Round]) -> str:
    med = Round(statistics.median(r.write for r in rounds),
                statistics.median(r.schedule for r in rounds),
                statistics.median(r.controllers for r in rounds),
                sum(r.lost for r in rounds))
    return f"{name:26s} median of {len(rounds)}: {med.line()} (lost: total)"


async def writes_per_second(master: Master, writers: int, seconds: float) -> float:
    async with Client(master.url, master.token, master.ca_pem) as client:
        load = Load(client, "rate", writers)
        await asyncio.sleep(seconds)  # a measurement window, not a wait for an event
        count = len(load.acked)
        await load.stop()
    return count / seconds


async def throughput(base: Path, etcd: EtcdCluster, writers: int, seconds: float
                     ) -> tuple[float, float]:
    sqlite = Master(base / "sqlite", extra_args=["--disable", "scheduler",
                                                 "--disable", "controllers"]).start()
    try:
        on_sqlite = await writes_per_second(sqlite, writers, seconds)
    finally:
        sqlite.stop()
    on_etcd_master = Master(base / "etcd-master", extra_args=[
        "--store", f"{etcd.url}?prefix=/rate", "--disable", "scheduler",
        "--disable", "controllers"]).start()
    try:
        on_etcd = await writes_per_second(on_etcd_master, writers, seconds)
    finally:
        on_etcd_master.stop()
    return on_sqlite, on_etcd


async def main(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="corral-failover-"))
    ha = HA(base, lease=str(args.lease))
    print(f"failover: 3 masters on a 3-member etcd, leader lease {args.lease:g} s, "
          f"{args.writers} writing clients, {args.rounds} rounds (figures from a shared, "
          "busy machine)", flush=True)
    try:
        ha.start()
        masters = await master_rounds(ha, args.rounds, args.writers)
        members = await etcd_rounds(ha, args.rounds, args.writers)
        print(summary("kill -9 leading master", masters))
        print(summary("kill -9 etcd leader", members))
        on_sqlite, on_etcd = await throughput(base, ha.etcd, args.writers, args.seconds)
        print(f"API writes/s, one master, {args.writers} clients, {args.seconds:g} s: "
              f"sqlite {on_sqlite:.0f}/s   etcd (3 members) {on_etcd:.0f}/s   "
              f"etcd/sqlite {on_etcd / on_sqlite:.2f}")
    finally:
        ha.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--lease", type=float, default=3.0,
                        help="the masters' --leader-lease (default: corral master's, 3)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each throughput measurement")
    asyncio.run(main(parser.parse_args()))
