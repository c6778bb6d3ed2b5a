"""Real agents choosing and running their proxy mode, in a network namespace the test
creates (the master, the agents and the backends all run inside it, as on one host).

Agents sharing the host share one nftables table with one writer (and each runs
its own socket-level load balancer, gone with it when killed); an endpoint
turning not ready (notReadyAddresses) leaves rotation through it; a writer killed
with -9 is replaced, a restarted agent reconciles the table, the last agent to
stop removes it; an agent without `nft` on PATH falls back to user space and says
why. The Service has no selector: the test writes its Endpoints, pointing at
backends it runs itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from corral.bpf.syscall import program_exists
from corral.objects import Obj
from tests.cluster import Agent, Master
from tests.integration.proxy.backends import NamedBackend, http_get
from tests.integration.proxy.test_socklb import attached_connect_programs, bpf_program_ids
from tests.netns import Netns
from tests.poll import eventually

pytestmark = pytest.mark.timeout(180)
NS = "default"


def service() -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}}


def endpoints(*ready: NamedBackend, unready: tuple[NamedBackend, ...] = ()) -> Obj:
    """One subset per backend (they share an IP, not a port)."""
    subsets = [{"addresses": [{"ip": b.host}], "ports": [{"port": b.port}]} for b in ready]
    subsets += [{"notReadyAddresses": [{"ip": b.host}], "ports": [{"port": b.port}]}
                for b in unready]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
            "subsets": subsets}


async def names_seen(address: tuple[str, int], count: int) -> set[str]:
    seen = set()
    for _ in range(count):
        with contextlib.suppress(OSError):
            seen.add(await http_get(*address))
    return seen


def path_without_nft() -> str:
    nft = shutil.which("nft")
    assert nft is not None, "nft must be installed (scripts/debian-packages.txt)"
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not Path(d, "nft").exists())


class Host:
    """The namespace's master and agents; blocking calls run in worker threads,
    which inherit the namespace from the loop's thread."""

    def __init__(self, ns: Netns, base: Path) -> None:
        self.ns = ns
        self.base = base
        self.master = Master(base / "master", netns=ns.name,
                             extra_args=["--disable", "scheduler", "--disable", "controllers"])
        self.agents: dict[str, Agent] = {}

    async def start_master(self) -> None:
        await asyncio.to_thread(self.master.start)

    async def agent(self, name: str, index: int, env: dict[str, str] | None = None) -> Agent:
        agent = self.agents.get(name) or Agent(self.master, name, self.base / name,
                                               f"127.0.1.{index}", netns=self.ns.name, env=env)
        self.agents[name] = agent
        return await asyncio.to_thread(agent.start)

    async def write(self, method: str, path: str, body: Obj) -> Obj:
        def call() -> Obj:
            with self.master.http() as http:
                r: httpx.Response = http.request(method, path, json=body)
                assert r.status_code in (200, 201), r.text
                return r.json()  # type: ignore[no-any-return]
        return await asyncio.to_thread(call)

    def tables(self) -> list[str]:
        listing = json.loads(self.ns.sh("nft", "-j", "list", "tables"))
        return [i["table"]["name"] for i in listing["nftables"] if "table" in i]

    def stop_all(self) -> None:
        for agent in self.agents.values():
            agent.cleanup()
        self.master.stop()


def writers(agents: list[Agent]) -> list[Agent]:
    return [a for a in agents if "this agent programs the host's table" in a.log()]


async def answers(address: tuple[str, int], name: str) -> bool:
    try:
        return await http_get(*address) == name
    except OSError:
        return False


async def _all_answer(addresses: list[tuple[str, int]], name: str) -> bool:
    return all([await answers(address, name) for address in addresses])


async def _is(value: Awaitable[set[str]], expected: set[str]) -> bool:
    return await value == expected


def test_agents_share_one_table_survive_a_killed_writer_and_fall_back(
        netns: Callable[[], Netns], tmp_path: Path) -> None:
    ns = netns()
    host = Host(ns, tmp_path)

    async def scenario() -> None:
        b0, b1 = NamedBackend("web-0"), NamedBackend("web-1")
        await b0.start()
        await b1.start()
        try:
            await host.start_master()
            a, b = await host.agent("node-a", 1), await host.agent("node-b", 2)
            svc = await host.write("POST", f"/api/v1/namespaces/{NS}/services", service())
            await host.write("POST", f"/api/v1/namespaces/{NS}/endpoints", endpoints(b0))
            cluster = (svc["spec"]["clusterIP"], 80)
            node_port = int(svc["spec"]["ports"][0]["nodePort"])
            await eventually(lambda: answers(cluster, "web-0"), what="clusterIP → web-0")
            # The clusterIP may answer through an agent's connect() hook before the
            # table is written: NodePorts are the table's own.
            await eventually(lambda: _all_answer([(a.node_ip, node_port), (b.node_ip, node_port)],
                                                 "web-0"), what="NodePorts on both nodes")
            for agent in (a, b):
                assert "proxy mode=nftables" in agent.log()
                assert "socket_lb=on" in agent.log()  # each its own connect() hook
            assert len(writers([a, b])) == 1 and len(host.tables()) == 1

            # Both ready: both in rotation; one turning not ready leaves it.
            both, path = {"web-0", "web-1"}, f"/api/v1/namespaces/{NS}/endpoints/web"
            await host.write("PUT", path, endpoints(b0, b1))
            await eventually(lambda: _is(names_seen(cluster, 6), both), what="both backends")
            await host.write("PUT", path, endpoints(b0, unready=(b1,)))
            await eventually(lambda: _is(names_seen(cluster, 6), {"web-0"}), what="web-1 out")

            # kill -9 the writer: the other agent writes the next change, and the
            # killed one's eBPF programs are detached and freed with its descriptors.
            dead = writers([a, b])[0]
            survivor = b if dead is a else a
            held = bpf_program_ids(dead.pid)
            assert held & attached_connect_programs()
            await asyncio.to_thread(dead.kill)
            await eventually(lambda: not held & attached_connect_programs()
                             and not any(map(program_exists, held)), timeout=10,
                             what="the killed agent's programs gone")
            await host.write("PUT", f"/api/v1/namespaces/{NS}/endpoints/web", endpoints(b1))
            await eventually(lambda: answers(cluster, "web-1"), what="the survivor's hook")
            await eventually(lambda: answers((survivor.node_ip, node_port), "web-1"),
                             what="the survivor's write")
            assert writers([survivor]) == [survivor]

            # The killed agent restarts and, once alone, reconciles the table.
            await host.agent(dead.name, 1 if dead is a else 2)
            await asyncio.to_thread(survivor.stop)
            assert len(host.tables()) == 1  # not the last agent: the table stays
            await host.write("PUT", f"/api/v1/namespaces/{NS}/endpoints/web", endpoints(b0))
            await eventually(lambda: answers(cluster, "web-0"), what="the restarted hook")
            await eventually(lambda: answers((dead.node_ip, node_port), "web-0"),
                             what="the restarted writer")
            await asyncio.to_thread(dead.stop)
            assert host.tables() == []  # the last agent took the table with it

            # Without nft on PATH the agent runs the user-space proxy, and says why.
            env = dict(os.environ, PATH=path_without_nft())
            c = await host.agent("node-c", 3, env=env)
            await eventually(lambda: "proxy mode=userspace" in c.log(), what="log")
            assert "nft not found on PATH" in c.log()
            await eventually(lambda: answers(cluster, "web-0"), what="user-space proxy")
            await eventually(lambda: answers(("127.0.1.3", node_port), "web-0"),
                             what="user-space NodePort")
            assert host.tables() == []
        finally:
            await asyncio.to_thread(host.stop_all)
            await b0.close()
            await b1.close()

    ns.run(scenario)
