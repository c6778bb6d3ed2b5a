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

from corral.api.errors import APIError
from corral.client.http import Client, ServerUnreachable
from tests.cluster import Agent, EtcdCluster, Master, kill_pods

T = TypeVar("T")
LEASE_SECONDS = "3"  # the masters' leader Leases: failover in seconds
WAIT = 90.0  # generous: a loaded machine
TRANSIENT = (409, 429, 500, 503, 504)  # answers a failover may give for a while


class HA:
    def __init__(self, base: Path) -> None:
        self.etcd = EtcdCluster(base / "etcd", size=3)
        data = base / "masters"
        self.masters = [Master(data, name=f"master-{i}", extra_args=[
            "--store", self.etcd.url, "--leader-lease", LEASE_SECONDS]) for i in (1, 2, 3)]
        self.agent: Agent | None = None
        self.base = base

    def start(self) -> HA:
        self.etcd.start()
        for master in self.masters:  # one by one: the first makes the CA the others use
            master.start(timeout=WAIT)
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

    def master_of(self, identity: str) -> Master:
        return next(m for m in self.masters if identity.endswith(f"_master_{m.url}"))

    async def holder(self, client: Client, lease: str) -> str:
        return str((await client.get("Lease", lease, "kube-system"))["spec"].get(
            "holderIdentity") or "")

    async def leader(self, client: Client, lease: str = "corral-scheduler") -> Master:
        holder = await until(lambda: self.holder(client, lease), f"a holder of {lease}")
        return self.master_of(holder)


async def until(check: Callable[[], Awaitable[T]], what: str, timeout: float = WAIT) -> T:
    """Poll an async ``check`` until it returns something truthy; return that. A
    check that fails to reach the API counts as not yet."""
    async def poll() -> T:
        while True:
            try:
                value: T | None = await check()
            except APIError as err:
                if err.code not in TRANSIENT:
                    raise
                value = None
            except (ServerUnreachable, httpx.HTTPError, OSError):
                value = None
            if value:
                return value
            await asyncio.sleep(0.1)

    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout}s: {what}") from None


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HA]:
    cluster = HA(tmp_path_factory.mktemp("ha"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
