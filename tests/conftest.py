"""Shared fixtures: a real `corral master` process on a free loopback port.

    master        one master per test module (fast); tests use unique names
    quiet_master  one per module, without scheduler and controllers (but the
                  ServiceAccount controller): only the test writes, for tests
                  of the API itself
    fresh_master  a master of the test's own (for restarts, crashes, state checks)
    kubectl       the real kubectl against the module's master, with a discovery
                  cache of its own
    client        corral's own API client (corral/client) of the module's master
    agents        start `corral agent` processes; each, and its pods, stopped after the test
    etcd          one real single-member etcd per test module (share it: give each
                  test a key prefix of its own)
    netns         create network namespaces (tests/netns.py); each deleted after the test
    searchable_base  a module's temp dir any user may search (not under pytest's 0700
                  root), for masters whose data dir unprivileged tasks must find closed
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from corral.client.http import Client
from corral.store.base import Store
from corral.store.open import open_store
from tests.cluster import Agent, Component, EtcdCluster, Master, remove_node_homes
from tests.kubectl import Kubectl
from tests.netns import Netns, unique_name
from tests.poll import wait_for


@pytest.fixture(scope="session", autouse=True)
def _node_homes() -> Iterator[None]:
    """Agents' state dirs made outside pytest's 0700 temp root (tests/cluster.py
    node_home) are removed when the session ends."""
    try:
        yield
    finally:
        remove_node_homes()


def started_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """A master of its own, stopped after: the body of every scope's ``master``."""
    m = Master(tmp_path_factory.mktemp("master")).start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    yield from started_master(tmp_path_factory)


@pytest.fixture(scope="module")
def kubectl(master: Master, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(master, tmp_path_factory.mktemp("kubecache"))


@pytest.fixture
async def client(master: Master) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(master.kubeconfig) as c:
        yield c


@pytest.fixture(scope="module")
def quiet_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("quiet"),
               extra_args=["--disable", "scheduler", "--disable", "controllers"]).start()
    # Only the ServiceAccount controller: a new namespace gets its `default`
    # account, without which ServiceAccount admission refuses every pod in it, as
    # Kubernetes' does.
    accounts = Component(m, "controllers", ["--controllers", "serviceaccount"],
                         kubeconfig=m.data_dir / "controllers.kubeconfig")
    try:
        accounts.start()
        # A pod made right after its namespace waits only a few seconds for its
        # account: on a loaded machine the process may take longer than that to
        # start, so tests begin once its informers have synced.
        wait_for(lambda: "controllers running" in accounts.log(), timeout=60,
                 what="the ServiceAccount controller running")
        yield m
    finally:
        accounts.stop()
        m.stop()


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def searchable_base() -> Iterator[Path]:
    """A temp dir every user may search (as /var/lib is), not under pytest's 0700
    temp root: for a master whose data dir a test's unprivileged processes must
    find closed by its own mode, not by an ancestor's."""
    path = Path(tempfile.mkdtemp(prefix="corral-open-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fresh_master(tmp_path: Path) -> Iterator[Master]:
    m = Master(tmp_path / "master").start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def netns() -> Iterator[Callable[[], Netns]]:
    """``netns()`` creates a network namespace (lo up); all are deleted at the end."""
    made: list[Netns] = []

    def make() -> Netns:
        made.append(Netns(unique_name()).create())
        return made[-1]

    try:
        yield make
    finally:
        for ns in made:
            ns.delete()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[AgentFactory]:
    """Start agents with ``agents(master, "node-x")``; every one, and every pod it
    ran, is stopped at the end of the test."""
    factory = AgentFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.cleanup()


class AgentFactory:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[Agent] = []

    def __call__(self, master: Master, name: str, *extra_args: str,
                 node_ip: str = "127.0.0.1", start: bool = True) -> Agent:
        agent = Agent(master, name, self.base / "agents" / name, node_ip, list(extra_args))
        self.started.append(agent)
        return agent.start() if start else agent

    def cleanup(self) -> None:
        for agent in self.started:
            agent.cleanup()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A SQLite store of the test's own, for tests of the API server's parts
    in-process (tests/store/ has its own, over every backend)."""
    opened = await open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield opened
    finally:
        await opened.close()
