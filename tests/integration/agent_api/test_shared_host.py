"""Agents sharing a host (corral up --agents N) are separate nodes: each keeps its
pods' cgroups in a parent of its own, and sweeps only that one."""

from __future__ import annotations

from pathlib import Path

import httpx

from corral.agent.runtime.cgroups import ContainerCgroup, cpu_shares
from corral.agent.runtime.shim import StateDir
from corral.api.quantity import cpu_millis
from tests.cluster import Agent, Master
from tests.integration.agent_api.conftest import (
    alive,
    create_pod,
    instances,
    make_pod,
    phase,
    wait_pod,
)
from tests.poll import wait_for


def _started(http: httpx.Client, agent: Agent, name: str, command: list[str],
             phase_: str) -> tuple[str, ContainerCgroup]:
    """A pod on ``agent`` in ``phase_``: its uid, and its pod's group."""
    uid = create_pod(http, make_pod(name, agent.name, command))["metadata"]["uid"]
    wait_pod(http, name, lambda p: phase(p) == phase_)
    [state] = instances(agent, uid)
    group = StateDir(agent.state_dir / "runtime" / state.container_id).read_cgroup()
    pod = group.pod_group() if group is not None else None
    assert pod is not None, f"pod {name} has no group of its own"
    return uid, pod


def _exists(group: ContainerCgroup) -> bool:
    return all(Path(d).is_dir() for d in group.dirs.values())


def test_a_restarted_agent_sweeps_only_its_own_pods_groups(master: Master, node: Agent,
                                                          agents) -> None:  # type: ignore[no-untyped-def]
    other: Agent = agents(master, "node-sweeper", node_ip="127.0.1.24")
    with master.http() as http:
        # The shared node's: one finished (its empty group stays while the pod
        # does, and would go at a mere rmdir), one running.
        _, finished = _started(http, node, "done-next-door", ["true"], "Succeeded")
        uid, running = _started(http, node, "running-next-door", ["sleep", "300"], "Running")
        [before] = [s.pid for s in instances(node, uid) if s.running]
        # The restarted agent's own pod, deleted while it was away: its sweep's work.
        _, swept = _started(http, other, "gone-while-away", ["true"], "Succeeded")
        other.stop()
        r = http.delete("/api/v1/namespaces/default/pods/gone-while-away",
                        params={"gracePeriodSeconds": "0"})
        assert r.status_code == 200, r.text
        other.start()
        wait_for(lambda: not _exists(swept), 30, "the restarted agent's sweep of its own")
    assert _exists(finished) and _exists(running)
    assert alive(before) and [s.pid for s in instances(node, uid) if s.running] == [before]
    # Each node's groups in a parent of its own.
    assert {Path(d).parent for d in finished.dirs.values()}.isdisjoint(
        Path(d).parent for d in swept.dirs.values())
    # Each node's parent weighs its allocatable CPU (the kubelet's kubepods group),
    # the host's parent at least both nodes' together: not one process's worth.
    with master.http() as http:
        nodes = {n: http.get(f"/api/v1/nodes/{n}").json() for n in (node.name, other.name)}
    shares = {}
    for name, group in ((node.name, finished), (other.name, swept)):
        cpu = group.dirs.get("cpu")
        assert cpu is not None, "this machine has the v1 cpu controller: weigh it"
        node_group = Path(cpu).parent
        shares[name] = int((node_group / "cpu.shares").read_text())
        allocatable = cpu_millis(nodes[name]["status"]["allocatable"]["cpu"])
        assert shares[name] == cpu_shares(allocatable), (name, shares[name], allocatable)
    host = Path(finished.dirs["cpu"]).parent.parent
    assert int((host / "cpu.shares").read_text()) >= sum(shares.values())
