"""Offers and DRF end to end: a real master (`--mesos-listen`, role weight
heavy=3), two real agents of 2 cpus, and framework processes
(tests/offers_framework.py) speaking Mesos' HTTP API.

    weights   frameworks in roles of weight 1 and 3, one 0.25-cpu task per offer,
              until the 4 cpus are full: 4 and 12 tasks (DRF, within one task)
    decline   a framework declining with refuse_seconds 4 is not offered the node
              again for 4 s, while another framework is; then it is again
    race      a greedy framework and a Deployment on the same full cluster: no
              node is ever committed beyond its allocatable, and it fills up
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.api.quantity import cpu_millis
from tests.cluster import Agent, Master, free_port, start_agents
from tests.manifests import container, deployment, pod_template
from tests.mesos_client import credentialed, leading
from tests.offers_framework import FrameworkProcess
from tests.poll import wait_for

CPUS_PER_NODE = 2
TASK = ("--cpus", "0.25", "--mem", "32")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Master, str]]:
    base = tmp_path_factory.mktemp("offers")
    port = free_port()
    master = Master(base / "master", extra_args=[
        "--mesos-listen", f"127.0.0.1:{port}", "--mesos-weights", "heavy=3"]).start()
    agents = [Agent(master, f"offer-{i}", base / f"offer-{i}", f"127.0.1.{60 + i}",
                    ["--cpus", str(CPUS_PER_NODE), "--memory", "2Gi"]) for i in range(2)]
    url = f"http://127.0.0.1:{port}"
    try:
        start_agents(agents)
        wait_for(lambda: leading(url), 30, "the mesos master leading")
        yield master, credentialed(url, master.data_dir)
    finally:
        for agent in agents:
            agent.cleanup()
        master.stop()


@pytest.fixture
def frameworks(cluster: tuple[Master, str], tmp_path: Path) -> Iterator[Any]:
    """``frameworks(name, *args)`` starts one; all are stopped after the test and
    the cluster is left without Allocs (their framework is removed with its stream)."""
    master, url = cluster
    wait_for(lambda: not _list(master, "/apis/corral.dev/v1/allocs"), 60,
             "no Allocs left by an earlier test")
    started: list[FrameworkProcess] = []

    def start(name: str, *args: str) -> FrameworkProcess:
        started.append(FrameworkProcess(url, tmp_path / f"{name}.jsonl", name, *args))
        return started[-1]

    try:
        yield start
    finally:
        for fw in started:
            fw.stop()
        # Their removal kills their tasks and deletes their Allocs: wait for it, so
        # that no agent is torn down while it is still stopping an executor.
        wait_for(lambda: not _list(master, "/apis/corral.dev/v1/allocs"), 60,
                 "the stopped frameworks' Allocs gone")


def _list(master: Master, path: str) -> list[dict[str, Any]]:
    with master.http() as http:
        r = http.get(path)
        r.raise_for_status()
        return list(r.json()["items"])


def test_role_weights_one_and_three_split_the_cluster_by_drf(
        frameworks: Any, tmp_path: Path) -> None:
    go = tmp_path / "go"
    light = frameworks("light", "--role", "light", "--per-offer", "1", "--go", str(go), *TASK)
    heavy = frameworks("heavy", "--role", "heavy", "--per-offer", "1", "--go", str(go), *TASK)
    wait_for(lambda: light.records("subscribed") and heavy.records("subscribed"), 30,
             "both subscribed")
    go.touch()  # both compete from the same moment
    slots = 2 * CPUS_PER_NODE * 4
    wait_for(lambda: len(light.running()) + len(heavy.running()) == slots, 90,
             f"all {slots} task slots running")
    counts = (len(light.running()), len(heavy.running()))
    # DRF with weights 1:3 over 16 equal tasks: 4 and 12, give or take the last one.
    assert abs(counts[0] - 4) <= 1 and abs(counts[1] - 12) <= 1, (counts, {
        fw.name: [(round(r["t"] - light.records("subscribed")[0]["t"], 3), r["event"],
                   r["node"], r.get("tasks", r.get("refuse")))
                  for r in fw.records() if r["event"] in ("accepted", "declined")]
        for fw in (light, heavy)})
    for fw in (light, heavy):
        assert not fw.records("error"), fw.records("error")


def test_decline_with_refuse_seconds_is_honoured(frameworks: Any) -> None:
    refuser = frameworks("refuser", "--role", "decl", "--decline", "4")
    other = frameworks("other", "--role", "decl", "--decline", "0.5")
    wait_for(lambda: len(refuser.records("declined")) >= 4, 60,
             "the refuser declining each node twice")
    records = sorted(refuser.records() + [{**r, "who": "other"} for r in other.records()],
                     key=lambda r: r["t"])
    refused_at: dict[str, float] = {}  # node → when the refuser sent its DECLINE
    offered_between = 0
    checked = 0
    for r in records:
        if r["event"] == "declined" and "who" not in r:
            refused_at[r["node"]] = r["sent"]
        elif r["event"] == "offer" and r["node"] in refused_at:
            if "who" in r:
                offered_between += 1
                continue
            waited = r["t"] - refused_at.pop(r["node"])
            assert waited >= 4.0, f"the node came back to the refuser after {waited:.2f} s"
            checked += 1
    assert checked >= 2  # the filter ran out and the node was offered to it again
    assert offered_between > 0  # meanwhile the node went to the other framework


def test_a_framework_and_a_deployment_racing_never_over_commit_a_node(
        cluster: tuple[Master, str], frameworks: Any) -> None:
    master, _ = cluster
    template = pod_template({"app": "race"}, containers=[container(
        ["sleep", "3600"], resources={"requests": {"cpu": "250m", "memory": "32Mi"}})])
    with master.http() as http:
        r = http.post("/apis/apps/v1/namespaces/default/deployments",
                      json=deployment("race", 8, template=template))
        assert r.status_code == 201, r.text
    greedy = frameworks("greedy", "--role", "race", *TASK)
    try:
        full = wait_for(_full_and_never_over(master), 120, "both nodes full")
        assert full["allocs"] and full["pods"], full  # both sides got room
        wait_for(greedy.running, 60, "the framework's tasks running")
        _full_and_never_over(master)()  # and still nothing over-committed
    finally:
        with master.http() as http:
            http.delete("/apis/apps/v1/namespaces/default/deployments/race",
                        params={"propagationPolicy": "Foreground"})


def _full_and_never_over(master: Master) -> Any:
    def check() -> dict[str, int] | None:
        committed: dict[str, int] = {}
        pods = [p for p in _list(master, "/api/v1/pods")
                if p["spec"].get("nodeName")
                and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
        allocs = [a for a in _list(master, "/apis/corral.dev/v1/allocs")
                  if a["spec"].get("nodeName")]
        for p in pods:
            cpu = sum(cpu_millis(c.get("resources", {}).get("requests", {}).get("cpu", "0"))
                      for c in p["spec"]["containers"])
            committed[p["spec"]["nodeName"]] = committed.get(p["spec"]["nodeName"], 0) + cpu
        for a in allocs:
            cpu = cpu_millis(a["spec"].get("resources", {}).get("cpu", "0"))
            committed[a["spec"]["nodeName"]] = committed.get(a["spec"]["nodeName"], 0) + cpu
        over = {n: c for n, c in committed.items() if c > CPUS_PER_NODE * 1000}
        assert not over, f"over-committed (millicores): {over}"
        if len(committed) == 2 and all(c == CPUS_PER_NODE * 1000 for c in committed.values()):
            return {"pods": len(pods), "allocs": len(allocs)}
        return None

    return check
