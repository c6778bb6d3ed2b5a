"""Three real masters on a real 3-member etcd, one real agent, for failover tests.

    ha   per module: etcd-1..3, master-1..3 (one data dir, one CA), node ha-1
         whose agent names every master. Tests kill or stop parts of it;
         ``ha.heal()`` brings every dead member and master back.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from corral.api.errors import AlreadyExists, APIError
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj
from tests.cluster import Agent, EtcdCluster, Master, free_port, kill_pods
from tests.mesos_client import credentialed
from tests.poll import eventually

T = TypeVar("T")
LEASE_SECONDS = "3"  # the masters' leader Leases: failover in seconds
WAIT = 90.0  # generous: a loaded machine
TRANSIENT = (409, 429, 500, 503, 504)  # answers a failover may give for a while


class HA:
    def __init__(self, base: Path, lease: str = LEASE_SECONDS) -> None:
        self.etcd = EtcdCluster(base / "etcd", size=3)
        data = base / "masters"
        self.mesos_ports = [free_port() for _ in (1, 2, 3)]  # each master's Mesos API
        self.masters = [Master(data, name=f"master-{i}", extra_args=[
            "--store", self.etcd.url, "--leader-lease", lease,
            "--mesos-listen", f"127.0.0.1:{port}"])
            for i, port in zip((1, 2, 3), self.mesos_ports, strict=True)]
        self.agent: Agent | None = None
        self.base = base

    def start(self) -> HA:
        self.etcd.start()
        first, *others = self.masters
        first.start(timeout=WAIT)  # first: it makes the CA the others use
        for master in others:  # then the others together (stopped by stop() if one fails)
            master.start(wait_ready=False)
        for master in others:
            master.wait_ready(WAIT)
        # Leader last: tests kill or stop the leader, and the agent should keep
        # heart-beating through a master that stays.
        urls = [m.url for m in reversed(self.masters)]
        self.agent = Agent(self.masters[0], "ha-1", self.base / "agents" / "ha-1",
                           "127.0.1.71", servers=urls).start(timeout=WAIT)
        return self

    def heal(self) -> None:
        for name in self.etcd.names:
            if name not in self.etcd.procs:
                self.etcd.start_member(name)
                self.etcd.wait_healthy(WAIT, [name])
        for master in self.masters:
            if master.proc is None:
                master.start(timeout=WAIT)
            elif master.proc.poll() is None:
                os.killpg(master.proc.pid, signal.SIGCONT)  # a test stopped it and failed

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()
            kill_pods(self.agent.state_dir)
        for master in self.masters:
            if master.proc is not None:
                os.killpg(master.proc.pid, signal.SIGCONT)
            master.stop()
        self.etcd.stop()

    def client(self, last: Master | None = None) -> Client:
        """A client of every master (``last`` tried last), failing over between them."""
        order = [m for m in self.masters if m is not last] + ([last] if last else [])
        first = self.masters[0]
        return Client([m.url for m in order], first.token, first.ca_pem, timeout=10.0)

    def mesos_url(self, master: Master) -> str:
        return f"http://127.0.0.1:{self.mesos_ports[self.masters.index(master)]}"

    def framework_url(self, master: Master) -> str:
        """``master``'s Mesos API with the framework credentials the masters share
        (one data dir: the first master wrote them)."""
        return credentialed(self.mesos_url(master), master.data_dir)

    def master_of(self, identity: str) -> Master:
        return next(m for m in self.masters if identity.endswith(f"_master_{m.url}"))

    async def holder(self, client: Client, lease: str) -> str:
        return str((await client.get("Lease", lease, "kube-system"))["spec"].get(
            "holderIdentity") or "")

    async def leader(self, client: Client, lease: str = "corral-scheduler") -> Master:
        holder = await until(lambda: self.holder(client, lease), f"a holder of {lease}")
        return self.master_of(holder)


async def until(check: Callable[[], Awaitable[T]], what: str, timeout: float = WAIT) -> T:
    """Poll an async ``check`` (tests/poll.py) until it returns something truthy;
    return that. A check that fails to reach the API counts as not yet."""
    async def tolerant() -> T | None:
        try:
            return await check()
        except APIError as err:
            if err.code not in TRANSIENT:
                raise
        except (ServerUnreachable, httpx.HTTPError, OSError):
            pass
        return None

    return await eventually(tolerant, timeout=timeout, what=what, interval=0.1)


async def create_acked(client: Client, obj: Obj) -> None:
    """Create until the API acknowledges it (or says it exists: an earlier try landed)."""
    async def once() -> bool:
        try:
            await client.create(obj, "default")
        except AlreadyExists:
            pass
        return True

    await until(once, f"creating {obj['metadata']['name']}")



class Writers:
    """Tasks creating ConfigMaps through every master until stopped."""

    def __init__(self, client: Client, prefix: str, count: int = 6, namespace: str = "default"
                 ) -> None:
        self.namespace = namespace
        self.client = client
        self.acked: list[str] = []
        self._stop = False
        self._tasks = [asyncio.create_task(self._write(f"{prefix}-{w}")) for w in range(count)]

    async def _write(self, prefix: str) -> None:
        i = 0
        while not self._stop:
            name = f"{prefix}-{i}"
            try:
                await self.client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": name}}, self.namespace)
                self.acked.append(name)
            except (APIError, ServerUnreachable):
                await asyncio.sleep(0.05)  # not acknowledged: it may or may not exist
            i += 1

    async def resumed(self, more: int) -> None:
        start = len(self.acked)

        async def grew() -> bool:
            return len(self.acked) >= start + more

        await until(grew, f"{more} more acknowledged creates")

    async def stop_and_check(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks)
        names = {cm["metadata"]["name"] for cm in
                 (await self.client.list_all("ConfigMap", self.namespace)).items}
        assert [n for n in self.acked if n not in names] == []


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HA]:
    cluster = HA(tmp_path_factory.mktemp("ha"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
