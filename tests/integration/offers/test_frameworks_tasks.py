"""A framework's tasks on a real cluster (master with --mesos-listen, real agents):
offers from the nodes' free resources, ACCEPT → an Alloc on the node whose
executor runs the tasks, status updates re-sent until acknowledged, KILL,
RECONCILE, the framework's failover timeout, an agent's death; and the bad
input Mesos answers with task updates."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import psutil

from tests.cluster import Agent, Master
from tests.kubectl import Kubectl
from tests.mesos_client import Framework, unused_offer
from tests.mesos_driver import launch, task_info
from tests.poll import wait_for

AgentStarter = Callable[..., Agent]
ALLOCS = "/apis/corral.dev/v1/namespaces/mesos/allocs"


def _scalar(offer: dict[str, Any], name: str) -> float:
    return float(next(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name))


def _allocs(master: Master, framework_id: str) -> list[dict[str, Any]]:
    with master.http() as http:
        r = http.get(ALLOCS, params={"labelSelector": f"corral.dev/framework={framework_id}"})
        return list(r.json()["items"]) if r.status_code == 200 else []


def _step_aside(fw: Framework) -> None:
    """No more offers for ``fw`` (SUPPRESS), and the ones it holds given back.

    Offers the master sent before SUPPRESS may still be on their way; the answer to
    a RECONCILE made after it comes behind them on the same stream, so once it is
    read every offer ``fw`` holds is in ``seen``."""
    assert fw.call("SUPPRESS").status_code == 202
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    fw.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": marker}}]})
    fw.wait_event("UPDATE", match=lambda e: e["update"]["status"]["task_id"]["value"] == marker)
    held = [o["id"] for e in fw.seen if e["type"] == "OFFERS" for o in e["offers"]["offers"]]
    fw.used_offers.update(o["value"] for o in held)
    assert fw.call("DECLINE", decline={"offer_ids": held}).status_code == 202


def _run_sleeper(fw: Framework, node: str, task_id: str, cpus: float) -> None:
    """Subscribe ``fw``, launch one ``sleep 600`` task on ``node``, see it RUNNING."""
    fw.subscribe()
    offer = unused_offer(fw, node)
    fw.accept([offer["id"]["value"]], [launch(task_info(task_id, node, "sleep 600",
                                                        cpus=cpus))])
    fw.wait_update(task_id, "TASK_RUNNING")


def _fresh_offer(fw: Framework, node: str) -> dict[str, Any]:
    """A new offer for ``node``: the ones held are declined (refuse 0) first."""
    held = [o["id"] for e in fw.seen if e["type"] == "OFFERS" for o in e["offers"]["offers"]]
    fw.used_offers.update(o["value"] for o in held)
    fw.call("DECLINE", decline={"offer_ids": held, "filters": {"refuse_seconds": 0}})
    return unused_offer(fw, node)


def _framework_status(master: Master, framework_id: str) -> dict[str, Any]:
    with master.http() as http:
        return dict(http.get(f"/apis/corral.dev/v1/frameworks/{framework_id}").json()
                    .get("status", {}))


def test_launch_run_finish_kill_and_reconcile(url: str, mesos_master: Master,
                                              agents: AgentStarter,
                                              frameworks: list[Framework], tmp_path: Any) -> None:
    agents(mesos_master, "mesos-a", "--cpus", "2", "--memory", "2Gi", node_ip="127.0.1.61")
    fw = Framework(url, "runner", roles=["batch"])
    frameworks.append(fw)
    fw.subscribe()
    offer = unused_offer(fw, "mesos-a")
    assert 1.5 <= _scalar(offer, "cpus") <= 2 and offer["allocation_info"] == {"role": "batch"}
    assert offer["hostname"] == "127.0.1.61"
    ports = next(r for r in offer["resources"] if r["name"] == "ports")
    assert ports["ranges"]["range"][0]["begin"] >= 10000
    quick = task_info("quick", "mesos-a", 'sleep 2; test -d "$MESOS_SANDBOX" && '
                      'test "$MESOS_TASK_ID" = quick')
    longer = task_info("long", "mesos-a", "sleep 600")
    r = fw.accept([offer["id"]["value"]], [launch(quick, longer)])
    assert r.status_code == 202, r.text
    starting = fw.wait_update("quick", "TASK_STARTING")  # as Mesos' command executor
    running = fw.wait_update("quick", "TASK_RUNNING")
    assert starting["uuid"] != running["uuid"]
    assert running["agent_id"] == {"value": "mesos-a"} and running["source"] == "SOURCE_EXECUTOR"
    fw.wait_update("long", "TASK_RUNNING")
    finished = fw.wait_update("quick", "TASK_FINISHED")
    assert finished["uuid"] != running["uuid"]
    kubectl = Kubectl(mesos_master, tmp_path / "cache")
    table = kubectl("get", "allocs", "-n", "mesos")
    assert "mesos-a" in table and "Running" in table, table
    def counted_status() -> dict[str, Any] | None:
        st = _framework_status(mesos_master, fw.id)
        return st if st.get("tasks") == 1 and st.get("allocs") == 1 else None

    counted = wait_for(counted_status, 30, "the Framework's status counting its task and Alloc")
    assert 0 < counted["dominantShare"] <= 1
    state = httpx.get(f"{url}/master/state").json()
    mine = next(f for f in state["frameworks"] if f["id"] == fw.id)
    assert {t["id"]: t["state"] for t in mine["tasks"]} == {"long": "TASK_RUNNING"}
    assert {t["id"] for t in mine["completed_tasks"]} == {"quick"}
    assert "mesos-a" in {a["id"] for a in state["slaves"]}

    # A later ACCEPT on the node goes into the same Alloc (its running executor
    # starts the task): no second Alloc, and "quick", ended and acknowledged,
    # leaves its spec with the next write.
    [first] = _allocs(mesos_master, fw.id)
    offer = _fresh_offer(fw, "mesos-a")
    fw.accept([offer["id"]["value"]], [launch(task_info("again", "mesos-a", "true"))])
    fw.wait_update("again", "TASK_FINISHED")
    [alloc] = _allocs(mesos_master, fw.id)
    assert alloc["metadata"]["uid"] == first["metadata"]["uid"]
    assert alloc["status"]["executorPid"] == first["status"]["executorPid"]
    wait_for(lambda: "quick" not in {t["id"] for t in _allocs(mesos_master, fw.id)[0][
        "spec"]["tasks"]}, 30, "the ended task dropped from the Alloc's spec")

    assert fw.call("KILL", kill={"task_id": {"value": "long"},
                                 "agent_id": {"value": "mesos-a"}}).status_code == 202
    fw.wait_update("long", "TASK_KILLED")
    # Both ended and acknowledged: the Alloc goes, its resources with it.
    wait_for(lambda: not _allocs(mesos_master, fw.id), 60, "the framework's Alloc deleted")

    r = fw.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": "long"}},
                                                  {"task_id": {"value": "never"}}]})
    assert r.status_code == 202
    long_state = fw.wait_event("UPDATE", match=lambda e: e["update"]["status"]["task_id"][
        "value"] == "long")["update"]["status"]
    assert long_state["state"] == "TASK_KILLED"
    assert long_state["reason"] == "REASON_RECONCILIATION" and "uuid" not in long_state
    never = fw.wait_event("UPDATE", match=lambda e: e["update"]["status"]["task_id"][
        "value"] == "never")["update"]["status"]
    assert never["state"] == "TASK_LOST"

    offer = _fresh_offer(fw, "mesos-a")
    group = {"type": "LAUNCH_GROUP", "launch_group": {
        "executor": {"executor_id": {"value": "group-ex"}, "type": "DEFAULT",
                     "framework_id": {"value": fw.id}},
        "task_group": {"tasks": [task_info("g1", "mesos-a", "true"),
                                 task_info("g2", "mesos-a", "true")]}}}
    assert fw.accept([offer["id"]["value"]], [group]).status_code == 202
    fw.wait_update("g1", "TASK_FINISHED")
    fw.wait_update("g2", "TASK_FINISHED")


def _direct_launches(master: Master, node: str) -> float:
    """The node agent's count of tasks the Mesos master launched on it directly."""
    with master.http() as http:
        text = http.get(f"/api/v1/nodes/{node}/proxy/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("corral_agent_framework_direct_launches_total"))


def test_launches_go_to_the_agent_directly_and_the_store_shows_them_after(
        url: str, mesos_master: Master, agents: AgentStarter,
        frameworks: list[Framework]) -> None:
    """Once a framework's Alloc runs on a node, the master hands later launches to
    the node's agent over its own line (the Alloc grown on the ledger first) and
    hears their states from it; the Alloc's spec and status say them afterwards.
    (The agent's side, a restart and who may call it: agent_api/test_allocs.py.)"""
    agents(mesos_master, "mesos-d", "--cpus", "1", "--memory", "1Gi",
                  node_ip="127.0.1.69")
    fw = Framework(url, "direct", failover_timeout=3600)
    frameworks.append(fw)
    _run_sleeper(fw, "mesos-d", "first", 0.1)  # its Alloc: made through the store
    before = _direct_launches(mesos_master, "mesos-d")
    offer = _fresh_offer(fw, "mesos-d")
    fw.accept([offer["id"]["value"]], [launch(
        task_info("quick-d", "mesos-d", "true", cpus=0.1),
        task_info("steady-d", "mesos-d", "sleep 600", cpus=0.1))])
    running = fw.wait_update("steady-d", "TASK_RUNNING")
    assert running["source"] == "SOURCE_EXECUTOR" and "uuid" in running
    fw.wait_update("quick-d", "TASK_FINISHED")
    assert _direct_launches(mesos_master, "mesos-d") == before + 2

    def recorded() -> dict[str, Any] | None:
        [alloc] = _allocs(mesos_master, fw.id)
        states = {t["id"]: t for t in alloc["status"].get("tasks") or ()}
        named = {t["id"] for t in alloc["spec"]["tasks"]}
        steady = states.get("steady-d", {})
        return alloc if "steady-d" in named and steady.get("state") == "TASK_RUNNING" \
            and steady.get("seq") else None

    alloc = wait_for(recorded, 30, "the Alloc recording the task launched directly")
    # The master shows the agent its term with its line: a launch in its name from
    # another holder of that term (a deposed master's) is refused there.
    with mesos_master.http() as http:
        lease = http.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                         "corral-mesos-master").json()["spec"]
    deposed = f"kube-system/corral-mesos-master other {lease.get('leaseTransitions') or 0}"
    refused = httpx.post(f"https://127.0.1.69:{mesos_master.agent_port('mesos-d')}"
                         f"/frameworkTasks/mesos/{alloc['metadata']['name']}",
                         verify=mesos_master.as_master_to_agents(),
                         headers={"corral-leader-fence": deposed},
                         json={"uid": alloc["metadata"]["uid"], "tasks": [
                             {"id": "never-d", "command": ["true"]}]})
    assert refused.status_code == 409 and f"{lease['holderIdentity']!r} leads" in refused.text, \
        refused.text
    # A KILL reaches it (sent to the agent directly, and written in the spec).
    assert fw.call("KILL", kill={"task_id": {"value": "steady-d"},
                                 "agent_id": {"value": "mesos-d"}}).status_code == 202
    fw.wait_update("steady-d", "TASK_KILLED")
    # After a pause the agent has closed the master's idle launch connection (its
    # 5 s keep-alive): the next launch still goes directly, on a new one. By then
    # the Alloc has shrunk to its one live task, so it first grows by a write.
    time.sleep(6)
    before = _direct_launches(mesos_master, "mesos-d")
    offer = _fresh_offer(fw, "mesos-d")
    fw.accept([offer["id"]["value"]], [launch(task_info("late-d", "mesos-d", "true",
                                                        cpus=0.1))])
    fw.wait_update("late-d", "TASK_FINISHED")
    assert _direct_launches(mesos_master, "mesos-d") == before + 1


def test_quota_refuses_a_standing_allocs_growth_before_a_task_runs(
        url: str, mesos_master: Master, agents: AgentStarter,
        frameworks: list[Framework]) -> None:
    """A ResourceQuota on the frameworks' namespace holds for a standing Alloc that
    grows for a direct launch: the growth is a write the quota judges before the
    agent is handed the task, so a task past the quota never runs (TASK_LOST with
    the quota's words) and the Alloc never holds more than the quota."""
    agents(mesos_master, "mesos-q", "--cpus", "1", "--memory", "1Gi", node_ip="127.0.1.72")
    with mesos_master.http() as http:
        wait_for(lambda: not http.get(f"{ALLOCS}").json()["items"], 120,
                 "no framework Alloc left from other tests (the quota counts them all)")
        quota = {"apiVersion": "v1", "kind": "ResourceQuota",
                 "metadata": {"name": "frameworks", "namespace": "mesos"},
                 "spec": {"hard": {"requests.cpu": "250m"}}}
        assert http.post("/api/v1/namespaces/mesos/resourcequotas",
                         json=quota).status_code == 201
        try:
            fw = Framework(url, "quota", failover_timeout=3600)
            frameworks.append(fw)
            _run_sleeper(fw, "mesos-q", "q1", 0.1)  # its Alloc: 100m, made by the store
            before = _direct_launches(mesos_master, "mesos-q")
            offer = _fresh_offer(fw, "mesos-q")
            fw.accept([offer["id"]["value"]], [launch(task_info("q2", "mesos-q", "sleep 600",
                                                                cpus=0.1))])
            fw.wait_update("q2", "TASK_RUNNING")  # grown to 200m, then handed over
            assert _direct_launches(mesos_master, "mesos-q") == before + 1
            offer = _fresh_offer(fw, "mesos-q")
            fw.accept([offer["id"]["value"]], [launch(task_info("q3", "mesos-q", "sleep 600",
                                                                cpus=0.1))])
            lost = fw.wait_update("q3", "TASK_LOST", ack=False)
            assert "exceeded quota" in lost["message"], lost
            assert _direct_launches(mesos_master, "mesos-q") == before + 1
            [alloc] = _allocs(mesos_master, fw.id)
            assert alloc["spec"]["resources"]["cpu"] == "200m", alloc["spec"]["resources"]
            assert "q3" not in {t["id"] for t in alloc["spec"]["tasks"]}
            assert "q3" not in {t["id"] for t in alloc["status"].get("tasks") or ()}
        finally:
            http.delete("/api/v1/namespaces/mesos/resourcequotas/frameworks")


def test_a_node_offered_has_the_masters_line_before_any_accept(
        url: str, mesos_master: Master, agents: AgentStarter,
        frameworks: list[Framework]) -> None:
    """The master opens its line to a node when it offers it to a subscribed
    framework, not at the first ACCEPT: the line's first connection (a review,
    TLS) would hold up the first tasks' launches and states there."""
    agents(mesos_master, "mesos-w", "--cpus", "1", "--memory", "1Gi", node_ip="127.0.1.71")
    fw = Framework(url, "warm", failover_timeout=3600)
    frameworks.append(fw)
    fw.subscribe()
    unused_offer(fw, "mesos-w")  # held, not accepted: no Alloc of any framework there
    assert mesos_master.proc is not None
    master = psutil.Process(mesos_master.proc.pid)
    wait_for(lambda: any(c.raddr and c.raddr.ip == "127.0.1.71" and c.status == "ESTABLISHED"
                         for c in master.net_connections("tcp")),
             30, "the master's line to the node it offered")


def test_updates_are_resent_until_acknowledged(url: str, mesos_master: Master,
                                               agents: AgentStarter,
                                               frameworks: list[Framework]) -> None:
    agents(mesos_master, "mesos-r", "--cpus", "1", "--memory", "1Gi", node_ip="127.0.1.62")
    fw = Framework(url, "forgetful", failover_timeout=3600)
    fw.auto_ack = False
    frameworks.append(fw)
    fw.subscribe()
    offer = unused_offer(fw, "mesos-r")
    fw.accept([offer["id"]["value"]], [launch(task_info("once", "mesos-r", "true"))])
    def about_once(e: dict[str, Any]) -> bool:
        return bool(e["update"]["status"]["task_id"]["value"] == "once")

    first = fw.wait_event("UPDATE", match=about_once)["update"]["status"]
    # Not acknowledged: nothing newer about the task comes, and a re-subscribed
    # framework gets the same update again (same uuid).
    fw.disconnect()
    fw.subscribe()
    again = fw.wait_event("UPDATE", match=about_once)["update"]["status"]
    assert (again["uuid"], again["state"]) == (first["uuid"], first["state"])
    fw.auto_ack = True
    fw.acknowledge(again)
    if again["state"] != "TASK_FINISHED":
        fw.wait_update("once", "TASK_FINISHED")
    wait_for(lambda: not _allocs(mesos_master, fw.id), 60, "the Alloc deleted once acknowledged")


def test_bad_accepts_get_task_updates(url: str, mesos_master: Master, agents: AgentStarter,
                                      frameworks: list[Framework]) -> None:
    agents(mesos_master, "mesos-b", "--cpus", "1", "--memory", "1Gi", node_ip="127.0.1.63")
    fw = Framework(url, "clumsy")
    other = Framework(url, "bystander")
    frameworks.extend([fw, other])
    fw.subscribe()
    r = fw.accept(["no-such-offer"], [launch(task_info("t0", "mesos-b", "true"))])
    assert r.status_code == 202
    st = fw.wait_update("t0", "TASK_LOST", ack=False)
    assert st["reason"] == "REASON_INVALID_OFFERS" and "uuid" not in st
    offer = unused_offer(fw, "mesos-b")
    other.subscribe()  # fw holds the node's one offer: nothing for the bystander
    stolen = other.accept([offer["id"]["value"]], [launch(task_info("t1", "mesos-b", "true"))])
    assert stolen.status_code == 202
    st = other.wait_update("t1", "TASK_LOST", ack=False)
    assert st["reason"] == "REASON_INVALID_OFFERS" and "not for framework" in st["message"]
    # The offer is still fw's: too much for it, a duplicate id, a custom executor,
    # and one good task, all in one ACCEPT.
    greedy = task_info("greedy", "mesos-b", "true", cpus=64)
    dup = task_info("good", "mesos-b", "true")
    custom = {**task_info("custom", "mesos-b", "true"), "executor": {
        "executor_id": {"value": "e"}, "command": {"value": "x"}}}
    r = fw.accept([offer["id"]["value"]], [launch(greedy, task_info("good", "mesos-b", "sleep 1"),
                                                  dup, custom)])
    assert r.status_code == 202
    st = fw.wait_update("greedy", "TASK_ERROR", ack=False)
    assert st["reason"] == "REASON_TASK_INVALID" and "more resources" in st["message"]
    assert "duplicate" in fw.wait_update("good", "TASK_ERROR", ack=False)["message"]
    assert "executor" in fw.wait_update("custom", "TASK_ERROR", ack=False)["message"]
    fw.wait_update("good", "TASK_FINISHED")
    bad_offer_ids = fw.call("ACCEPT", accept={"offer_ids": [], "operations": []})
    assert bad_offer_ids.status_code == 400


def test_failover_timeout_keeps_then_ends_tasks(url: str, mesos_master: Master,
                                                agents: AgentStarter,
                                                frameworks: list[Framework]) -> None:
    agents(mesos_master, "mesos-f", "--cpus", "2", "--memory", "2Gi", node_ip="127.0.1.64")
    fw = Framework(url, "phoenix", failover_timeout=3600)
    frameworks.append(fw)
    _run_sleeper(fw, "mesos-f", "keep", 0.5)
    fw.disconnect()
    fw.subscribe()  # within the failover timeout: the same framework, its task alive
    fw.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": "keep"}}]})
    st = fw.wait_event("UPDATE", match=lambda e: e["update"]["status"].get(
        "reason") == "REASON_RECONCILIATION")["update"]["status"]
    assert st["state"] == "TASK_RUNNING"
    assert len(_allocs(mesos_master, fw.id)) == 1
    _step_aside(fw)

    brief = Framework(url, "mayfly", failover_timeout=1)
    frameworks.append(brief)
    _run_sleeper(brief, "mesos-f", "doomed", 0.5)
    brief.disconnect()
    wait_for(lambda: not _allocs(mesos_master, brief.id), 60,
             "the removed framework's Alloc deleted")
    state = httpx.get(f"{url}/master/state").json()
    assert brief.id in {f["id"] for f in state["completed_frameworks"]}
    assert len(_allocs(mesos_master, fw.id)) == 1  # the other framework is untouched


def test_agent_killed_under_tasks_loses_them(url: str, mesos_master: Master,
                                             agents: AgentStarter,
                                             frameworks: list[Framework]) -> None:
    node = agents(mesos_master, "mesos-k", "--cpus", "1", "--memory", "1Gi",
                  node_ip="127.0.1.65")
    fw = Framework(url, "unlucky")
    aware = Framework(url, "aware", capabilities=["PARTITION_AWARE"])
    frameworks.extend([fw, aware])
    _run_sleeper(fw, "mesos-k", "victim", 0.25)
    _step_aside(fw)
    _run_sleeper(aware, "mesos-k", "pa", 0.25)
    node.kill()
    lost = fw.wait_update("victim", "TASK_LOST", timeout=60)
    assert lost["source"] == "SOURCE_MASTER" and lost["reason"] == "REASON_AGENT_REMOVED"
    aware.wait_update("pa", "TASK_UNREACHABLE", timeout=60)
    aware.wait_update("pa", "TASK_GONE", timeout=60)
    wait_for(lambda: not _allocs(mesos_master, fw.id), 60, "the lost node's Allocs deleted")


def test_a_pymesos_framework_runs_unchanged(url: str, mesos_master: Master,
                                           agents: AgentStarter, tmp_path: Any) -> None:
    """pymesos (the PyPI library) as its own process: it checks /version, subscribes,
    launches on offers, sees its updates (acknowledging them itself), kills,
    reconciles, and tears itself down."""
    agents(mesos_master, "mesos-p", "--cpus", "1", "--memory", "1Gi", node_ip="127.0.1.66")
    out = tmp_path / "pymesos.jsonl"
    parts = urlsplit(url)
    assert parts.username and parts.password
    proc = subprocess.run([sys.executable, "-m", "tests.pymesos_framework",
                           f"{parts.hostname}:{parts.port}", "--principal",
                           unquote(parts.username), "--secret", unquote(parts.password),
                           "--out", str(out), "--tasks", "3"],
                          capture_output=True, text=True, timeout=180, check=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert proc.returncode == 0, (proc.stderr[-3000:], records)
    registered = records[0]
    assert registered["event"] == "registered" and registered["version"] == "1.11.0"
    states = {}
    for r in records:
        if r["event"] == "update" and r["reason"] != "REASON_RECONCILIATION":
            states.setdefault(r["task"], []).append(r["state"])
    assert states["t0"] == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLED"]
    assert states["t1"][-1] == states["t2"][-1] == "TASK_FINISHED"
    reconciled = [r for r in records if r.get("reason") == "REASON_RECONCILIATION"]
    assert [(r["task"], r["state"]) for r in reconciled] == [("t1", "TASK_FINISHED")]
    framework_id = registered["framework_id"]
    with mesos_master.http() as http:
        fw = http.get(f"/apis/corral.dev/v1/frameworks/{framework_id}").json()
    assert fw["status"]["phase"] == "Removed"  # pymesos' stop() is a TEARDOWN


def test_a_prod_pod_preempts_a_frameworks_tasks(url: str, mesos_master: Master,
                                               agents: AgentStarter,
                                               frameworks: list[Framework]) -> None:
    """Priority bands still decide: a framework's Alloc has the default priority,
    so a production pod that does not fit beside it preempts it, and the
    framework is told its task was killed."""
    agents(mesos_master, "mesos-pp", "--cpus", "1", "--memory", "1Gi", node_ip="127.0.1.67")
    fw = Framework(url, "best-effort")
    frameworks.append(fw)
    _run_sleeper(fw, "mesos-pp", "squatter", 0.9)
    _step_aside(fw)
    with mesos_master.http() as http:
        assert http.post("/apis/scheduling.k8s.io/v1/priorityclasses", json={
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "offers-production"}, "value": 100_000}).status_code == 201
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "prod-over-mesos"},
               "spec": {"priorityClassName": "offers-production",
                        "nodeSelector": {"kubernetes.io/hostname": "mesos-pp"},
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": "x", "command": ["sleep", "600"],
                                        "resources": {"requests": {"cpu": "500m"}}}]}}
        assert http.post("/api/v1/namespaces/default/pods", json=pod).status_code == 201
        killed = fw.wait_update("squatter", "TASK_KILLED", timeout=90)
        assert killed["source"] == "SOURCE_EXECUTOR"

        def running() -> bool:
            got = http.get("/api/v1/namespaces/default/pods/prod-over-mesos").json()
            return bool(got.get("status", {}).get("phase") == "Running")

        wait_for(running, 90, "the production pod running where the framework's task was")
        http.delete("/api/v1/namespaces/default/pods/prod-over-mesos")


def test_tasks_run_as_their_user_only_if_the_principal_may(
        url: str, mesos_master: Master, agents: AgentStarter, frameworks: list[Framework],
        searchable_base: Path) -> None:
    """Mesos' run_tasks ACL as RBAC: CommandInfo.user runs only if the framework's
    principal may "run" taskusers.corral.dev/<user>, else TASK_ERROR; no user is
    the node's pod user. None of them reads the master's keys or the node's own."""
    node = agents(mesos_master, "mesos-u", "--cpus", "1", "--memory", "1Gi",
                  node_ip="127.0.1.68")
    out = searchable_base / "task-out"
    out.mkdir()
    os.chmod(out, 0o1777)
    with mesos_master.http() as http:
        for kind, body in (("clusterroles", {
                "metadata": {"name": "run-as-nobody"},
                "rules": [{"apiGroups": ["corral.dev"], "resources": ["taskusers"],
                           "verbs": ["run"], "resourceNames": ["nobody"]}]}),
                ("clusterrolebindings", {
                    "metadata": {"name": "run-as-nobody"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                "kind": "ClusterRole", "name": "run-as-nobody"},
                    "subjects": [{"kind": "User", "name": "corral-framework"}]})):
            r = http.post(f"/apis/rbac.authorization.k8s.io/v1/{kind}", json=body)
            assert r.status_code == 201, r.text
    fw = Framework(url, "users")
    frameworks.append(fw)
    fw.subscribe()
    script = ("{ id -u; "
              f"cat {mesos_master.data_dir}/token >/dev/null 2>&1 && echo token=read "
              "|| echo token=denied; "
              f"ls {node.state_dir}/runtime >/dev/null 2>&1 && echo runtime=listed "
              "|| echo runtime=denied; "
              f"cat {node.credential()} >/dev/null 2>&1 && echo nodecred=read "
              "|| echo nodecred=denied; "
              'cd "$MESOS_SANDBOX" && touch mine && echo sandbox=ok; '
              f"}} > {out}/$MESOS_TASK_ID")
    tasks = [task_info(name, node.name, script, cpus=0.1) for name in
             ("plain", "as-nobody", "as-root")]
    tasks[1]["command"]["user"] = "nobody"
    tasks[2]["command"]["user"] = "root"
    offer = unused_offer(fw, node.name)
    assert fw.accept([offer["id"]["value"]], [launch(*tasks)]).status_code == 202
    refused = fw.wait_update("as-root", "TASK_ERROR")
    assert refused["reason"] == "REASON_TASK_UNAUTHORIZED"
    assert refused["message"] == "Not authorized to launch as user 'root'"
    fw.wait_update("plain", "TASK_FINISHED")
    fw.wait_update("as-nobody", "TASK_FINISHED")
    expected = {"plain": pwd.getpwnam("corral-pod").pw_uid,
                "as-nobody": pwd.getpwnam("nobody").pw_uid}
    for name, uid in expected.items():
        seen = (out / name).read_text().split()
        assert seen == [str(uid), "token=denied", "runtime=denied", "nodecred=denied",
                        "sandbox=ok"], (name, seen)
    assert not (out / "as-root").exists()
