"""Failover of a real 3-master control plane on a real 3-member etcd.

- kill -9 the leading master during a stream of creates: every create that got
  a 2xx is there afterwards, writes go on through the survivors, the scheduler
  binds again, no pod is ever bound twice, the Deployment does not over-create;
- kill -9 the etcd leader during a stream of creates: nothing acknowledged is
  lost and writes go on;
- SIGSTOP the leader past its Lease (a master cut off): a standby takes over, and
  once the old one runs again nothing it writes as leader is accepted;
- the same for the Mesos master, with a framework's ACCEPT waiting in its socket:
  the task it takes up on waking never runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from corral.api.errors import APIError, NotFound
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, parse_time
from corral.store.etcd import EtcdStore
from tests.cluster import Agent, Master, kill_pods
from tests.integration.ha.conftest import HA, Writers, create_acked, until
from tests.mesos_client import Framework, unused_offer
from tests.mesos_driver import launch, task_info
from tests.poll import wait_for

NS = "default"


def sleeper(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "x", "command": ["sleep", "600"],
                                     "resources": {"requests": {"cpu": "1m"}}}]}}


def deployment(name: str, replicas: int) -> Obj:
    template = sleeper("", {"app": name})
    for key in ("apiVersion", "kind"):
        del template[key]
    del template["metadata"]["name"]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template}}


async def live_pods(client: Client, selector: str) -> list[Obj]:
    page = await client.list("Pod", NS, label_selector=selector)
    return [p for p in page.items if not p["metadata"].get("deletionTimestamp")]


class Pods:
    """Every pod seen and every nodeName each was seen with, from a list and a
    watch that re-watches through whichever master is alive."""

    def __init__(self, client: Client) -> None:
        self.labels: dict[str, dict[str, str]] = {}
        self.nodes: dict[str, set[str]] = {}
        self._task = asyncio.create_task(self._record(client))

    def _see(self, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        self.labels[name] = pod["metadata"].get("labels") or {}
        if node := pod.get("spec", {}).get("nodeName"):
            self.nodes.setdefault(name, set()).add(node)

    async def _record(self, client: Client) -> None:
        page = await client.list("Pod", NS)
        for pod in page.items:
            self._see(pod)
        rv = page.resource_version
        while True:
            try:
                async for event in client.watch("Pod", NS, resource_version=rv):
                    rv = event.resource_version or rv
                    if event.type != "BOOKMARK":
                        self._see(event.object)
            except (APIError, ServerUnreachable):
                await asyncio.sleep(0.1)

    def named(self, label: str, value: str) -> list[str]:
        return sorted(n for n, labels in self.labels.items() if labels.get(label) == value)

    async def stop(self) -> list[str]:
        """Pods bound to more than one node (must be none)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return [name for name, nodes in self.nodes.items() if len(nodes) > 1]


def bound(pods: list[Obj]) -> bool:
    return all(p["spec"].get("nodeName") for p in pods)


def all_bound(client: Client, selector: str, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        pods = await live_pods(client, selector)
        return len(pods) == count and bound(pods)
    return check


def nothing_pending(client: Client) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return bound(await live_pods(client, ""))
    return check


async def test_killing_the_leading_master_loses_no_acknowledged_write(ha: HA) -> None:
    ha.heal()
    async with ha.client() as probe:
        leader = await ha.leader(probe)
    async with ha.client(last=leader) as client:
        await create_acked(client, deployment("ha-web", 3))
        await until(all_bound(client, "app=ha-web", 3), "3 ha-web pods bound")
        pods = Pods(client)
        writers = Writers(client, "ha-kill")
        await writers.resumed(30)

        leader.kill()
        await writers.resumed(30)  # through the survivors
        for i in range(3):
            await create_acked(client, sleeper(f"ha-after-kill-{i}", {"batch": "after-kill"}))
        await until(all_bound(client, "batch=after-kill", 3),
                    "the new scheduler leader binding pods")
        new_leader = await ha.leader(client)
        assert new_leader is not leader
        await until(lambda: client.set_scale("Deployment", "ha-web", NS, 5),
                    "scaling ha-web")
        await until(all_bound(client, "app=ha-web", 5), "controllers acting again")

        await writers.stop_and_check()
        assert await pods.stop() == []  # no pod bound twice
        rs = await client.list("ReplicaSet", NS, label_selector="app=ha-web")
        assert len(rs.items) == 1
        assert len(pods.named("app", "ha-web")) == 5  # no over-create, ever


async def test_killing_the_etcd_leader_loses_no_acknowledged_write(ha: HA) -> None:
    ha.heal()
    async with ha.client() as client:
        seen: set[str] = set()
        start = (await client.list("ConfigMap", NS)).resource_version

        async def watch() -> None:  # through a master whose etcd stream must resume
            rv = start
            while True:
                try:
                    async for event in client.watch("ConfigMap", NS, resource_version=rv):
                        rv = event.resource_version or rv
                        seen.add(event.object["metadata"].get("name", ""))
                except (APIError, ServerUnreachable):
                    await asyncio.sleep(0.1)

        watching = asyncio.create_task(watch())
        writers = Writers(client, "ha-etcd")
        await writers.resumed(30)
        ha.etcd.kill(ha.etcd.leader())
        await writers.resumed(30)
        await writers.stop_and_check()

        async def watched_all() -> bool:
            return set(writers.acked) <= seen

        await until(watched_all, "every acknowledged create arriving on the watch")
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
    ha.heal()


async def test_without_etcd_quorum_the_api_answers_503_then_recovers(ha: HA) -> None:
    ha.heal()
    for name in ha.etcd.names[:2]:
        ha.etcd.kill(name)
    try:
        master = ha.masters[0]
        with master.http() as http:
            def unavailable() -> Any:
                r = http.post(f"/api/v1/namespaces/{NS}/configmaps",
                              json={"metadata": {"name": "no-quorum"}})
                return r if r.status_code == 503 else None

            answer = wait_for(unavailable, 60.0, "a 503 while etcd has no quorum")
            status = answer.json()
            assert status["kind"] == "Status" and status["reason"] == "ServiceUnavailable"
            assert "storage is unavailable" in status["message"]
            assert http.get(f"/api/v1/namespaces/{NS}/configmaps").status_code == 503

        def mesos_unavailable() -> bool:  # no master can lead the Mesos master either
            r = httpx.post(f"{ha.framework_url(master)}/api/v1/scheduler", timeout=10,
                           content=json.dumps({"type": "SUBSCRIBE", "subscribe": {
                               "framework_info": {"user": "u", "name": "x"}}}),
                           headers={"Content-Type": "application/json"})
            return r.status_code == 503 and r.text == "No leader elected"

        wait_for(mesos_unavailable, 60.0, "the Mesos API answering 503 without a leader")
    finally:
        ha.heal()
    async with ha.client() as client:
        await create_acked(client, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "quorum-back"}})


async def _fenced_writes(master: Master, holder: str, result: str) -> float:
    with master.http() as http:
        text = http.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("corral_apiserver_fenced_writes_total{") and \
                f'holder="{holder}"' in line and f'result="{result}"' in line and \
                'lease="kube-system/corral-scheduler"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_leader_stopped_past_its_lease_is_fenced_when_it_resumes(ha: HA) -> None:
    ha.heal()
    async with ha.client() as probe:
        old = await ha.leader(probe)
        identity = await ha.holder(probe, "corral-scheduler")
    async with ha.client(last=old) as client:
        await until(nothing_pending(client), "an idle scheduler (nothing pending)")
        pods = Pods(client)
        accepted = await _fenced_writes(old, identity, "accepted")
        assert old.proc is not None
        os.killpg(old.proc.pid, signal.SIGSTOP)
        try:
            for i in range(3):
                await create_acked(client, sleeper(f"ha-stopped-{i}", {"batch": "stopped"}))

            async def taken_over() -> Any:
                return await ha.holder(client, "corral-scheduler") not in ("", identity)

            await until(taken_over, "a standby taking the scheduler's Lease")
            await until(all_bound(client, "batch=stopped", 3), "the standby binding")
        finally:
            os.killpg(old.proc.pid, signal.SIGCONT)
        await until(_async(lambda: "leader lost lease=kube-system/corral-scheduler"
                           in old.log()), "the old leader noticing it lost")
        for i in range(3):  # more work the old leader's scheduler may have queued for
            await create_acked(client, sleeper(f"ha-resumed-{i}", {"batch": "resumed"}))
        await until(all_bound(client, "batch=resumed", 3), "binding after the resume")
        assert await _fenced_writes(old, identity, "accepted") == accepted
        assert await pods.stop() == []


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()
    return run


def test_status_shows_masters_leaders_and_etcd_members(ha: HA) -> None:
    ha.heal()
    first = ha.masters[0]
    env = {**os.environ, "KUBECONFIG": str(first.kubeconfig)}

    def all_live() -> str | None:
        out = subprocess.run([sys.executable, "-m", "corral.cli.main", "status"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        live = all(f"{m.url}   live" in out.stdout for m in ha.masters)
        return out.stdout if live else None

    text = wait_for(all_live, 60.0, "three live masters")
    assert text.count("scheduler") == 1 and text.count("controller-manager") == 1
    assert "STORE etcd" in text
    members = [line for line in text.splitlines() if line.startswith("etcd-")]
    assert len(members) == 3 and all("healthy" in line for line in members)
    assert sum(line.rstrip().endswith("leader") for line in members) == 1


async def test_an_agent_fails_over_when_its_master_is_killed(ha: HA) -> None:
    ha.heal()
    first = ha.masters[0]
    agent = Agent(first, "ha-2", ha.base / "agents" / "ha-2", "127.0.1.72",
                  servers=[m.url for m in ha.masters]).start(timeout=90.0)
    try:
        assert "master=" + first.url in agent.log()  # it talks to the first master
        first.kill()
        async with ha.client() as client:
            pinned = sleeper("ha-2-after-kill")
            pinned["spec"]["nodeName"] = "ha-2"  # straight to the node: the agent must see it

            async def running() -> bool:
                pod = await client.get("Pod", "ha-2-after-kill", NS)
                return pod.get("status", {}).get("phase") == "Running"

            await create_acked(client, pinned)
            await until(running, "the agent running a pod after its master died")

            async def ready() -> bool:
                node = await client.get("Node", "ha-2")
                return any(c["type"] == "Ready" and c["status"] == "True"
                           for c in node["status"].get("conditions", []))

            assert await ready()  # its heartbeats went on through another master
    finally:
        agent.stop()
        kill_pods(agent.state_dir)
        ha.heal()


async def test_an_agent_whose_master_stops_answering_stays_ready(ha: HA) -> None:
    """A stopped master still accepts connections and never answers: the agent's
    heartbeat must give up on it and renew through another master well inside the
    node controller's grace period, or the node goes NotReady and its pods are
    evicted because one master hung."""
    ha.heal()
    async with ha.client() as client:
        leading = {await ha.holder(client, "corral-controller-manager"),
                   await ha.holder(client, "corral-scheduler")}
    victim = next(m for m in ha.masters if not any(h.endswith(f"_master_{m.url}")
                                                   for h in leading))
    others = [m.url for m in ha.masters if m is not victim]
    agent = Agent(victim, "ha-3", ha.base / "agents" / "ha-3", "127.0.1.73",
                  servers=[victim.url, *others]).start(timeout=90.0)
    assert victim.proc is not None
    try:
        assert "master=" + victim.url in agent.log()
        async with ha.client(last=victim) as client:
            async def first_lease() -> Obj | None:
                try:
                    return await client.get("Lease", "ha-3", "kube-node-lease")
                except NotFound:
                    return None

            lease = await until(first_lease, "the agent's first Lease renewal")
            stopped_at = parse_time(lease["spec"]["renewTime"])
            assert stopped_at is not None
            os.killpg(victim.proc.pid, signal.SIGSTOP)
            not_ready: list[Obj] = []

            async def renewed_for_a_while() -> bool:
                node = await client.get("Node", "ha-3")
                ready = [c for c in node["status"].get("conditions", [])
                         if c["type"] == "Ready"]
                if not ready or ready[0]["status"] != "True":
                    not_ready.append(node)
                lease = await client.get("Lease", "ha-3", "kube-node-lease")
                renewed = parse_time(lease["spec"]["renewTime"])
                return renewed is not None and (renewed - stopped_at).total_seconds() > 12

            await until(renewed_for_a_while, "the Lease renewed through another master")
            assert not_ready == [], "the node left Ready while one master was stopped"
    finally:
        os.killpg(victim.proc.pid, signal.SIGCONT)
        agent.stop()
        kill_pods(agent.state_dir)
        ha.heal()


def test_a_crd_created_on_one_master_is_served_by_every_master(ha: HA) -> None:
    ha.heal()
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.ha.example.com"},
           "spec": {"group": "ha.example.com", "scope": "Cluster",
                    "names": {"plural": "gadgets", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    path = "/apis/ha.example.com/v1/gadgets"
    first, *others = ha.masters
    with first.http() as http:
        made = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
        assert made.status_code in (201, 409), made.text
    for master in others:  # through each master's watch of the CRDs in etcd
        with master.http() as http:
            wait_for(lambda: http.get(path).status_code == 200, 30.0,
                     f"{master.name} serving {path}")
            body = {"apiVersion": "ha.example.com/v1", "kind": "Gadget",
                    "metadata": {"name": master.name}}
            assert http.post(path, json=body).status_code == 201
    with first.http() as http:
        assert http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                           f"{crd['metadata']['name']}").status_code == 200
    for master in others:
        with master.http() as http:
            wait_for(lambda: http.get(path).status_code == 404, 30.0,
                     f"{master.name} no longer serving {path}")


async def test_rotate_key_waits_for_every_master_and_etcd_holds_only_ciphertext(
        ha: HA) -> None:
    ha.heal()
    first = ha.masters[0]
    with first.http() as http:
        made = http.post("/api/v1/namespaces/default/secrets", json={
            "metadata": {"name": "ha-rotated"}, "stringData": {"pw": "HA-SECRET-5e1"}})
        assert made.status_code in (201, 409), made.text
    rotated = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "corral.cli.main", "secrets", "rotate-key",
                         "--data-dir", str(first.data_dir), "--timeout", "90"],
        capture_output=True, text=True, timeout=300, check=False)
    assert rotated.returncode == 0, rotated.stderr
    digest = rotated.stdout.splitlines()[-1].rsplit("(", 1)[1].rstrip(")")
    for master in ha.masters:  # each one runs the last file and reads the Secret
        with master.http() as http:
            metrics = http.get("/metrics").text
            assert f'hash="{digest}' in metrics, master.name
            got = http.get("/api/v1/namespaces/default/secrets/ha-rotated").json()
            assert got["data"]["pw"] == base64.b64encode(b"HA-SECRET-5e1").decode()
    store = await EtcdStore.open(ha.etcd.local.endpoints)
    try:
        raw = await store.get("/registry/core/secrets/default/ha-rotated")
    finally:
        await store.close()
    assert raw is not None and raw.value.startswith(b"k8s:enc:secretbox:v1:key2:")
    assert b"HA-SECRET-5e1" not in raw.value


def _mesos_leader(ha: HA, among: list[Master]) -> Master | None:
    for master in among:
        try:
            if httpx.get(f"{ha.mesos_url(master)}/master/state", timeout=2,
                         follow_redirects=False).status_code == 200:
                return master
        except httpx.HTTPError:
            pass
    return None


def test_a_framework_follows_the_mesos_leader_and_keeps_its_task(ha: HA) -> None:
    """Standbys answer 307 with the leader's address; the leader killed, the next
    one rebuilds frameworks and tasks from the store, and the framework
    re-subscribes to it with its id and finds its task still running."""
    ha.heal()
    leader = wait_for(lambda: _mesos_leader(ha, ha.masters), 90, "a Mesos leader")
    standby = next(m for m in ha.masters if m is not leader)
    subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u",
                                                                       "name": "x"}}}
    moved = httpx.post(f"{ha.framework_url(standby)}/api/v1/scheduler",
                       content=json.dumps(subscribe), follow_redirects=False,
                       headers={"Content-Type": "application/json"})
    assert moved.status_code == 307
    assert moved.headers["Location"] == f"//{ha.mesos_url(leader)[7:]}/api/v1/scheduler"
    fw = Framework(ha.framework_url(leader), "survivor", failover_timeout=3600)
    try:
        fw.subscribe()
        offer_id = unused_offer(fw, "ha-1", 90)["id"]["value"]
        fw.accept([offer_id], [launch(task_info("steady", "ha-1", "sleep 600", cpus=0.05))])
        fw.wait_update("steady", "TASK_RUNNING", timeout=90)
        # A launch into the running Alloc goes to the agent directly, its spec write
        # after (within WRITE_SECONDS): the leader dies right away, maybe before
        # that write; either way the next one learns the task (from the spec, the
        # agent's status.tasks, or its feed) and reconciles it RUNNING.
        more = unused_offer(fw, "ha-1", 90)
        fw.accept([more["id"]["value"]], [launch(task_info("direct", "ha-1", "sleep 600",
                                                           cpus=0.05))])
        fw.wait_update("direct", "TASK_RUNNING", timeout=90)
        leader.kill()
        survivors = [m for m in ha.masters if m is not leader]
        successor = wait_for(lambda: _mesos_leader(ha, survivors), 90, "a new Mesos leader")
        fw.url = ha.framework_url(successor)
        fw.subscribe()
        fw.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": "steady"}},
                                                  {"task_id": {"value": "direct"}}]})
        for task in ("steady", "direct"):
            st = fw.wait_event("UPDATE", 60, lambda e, t=task: e["update"]["status"].get(
                "reason") == "REASON_RECONCILIATION" and e["update"]["status"]["task_id"][
                "value"] == t)["update"]["status"]
            assert st["state"] == "TASK_RUNNING", st
        assert fw.call("TEARDOWN").status_code == 202
    finally:
        fw.close()
        ha.heal()


def _bytes_waiting(port: int) -> int:
    """Bytes received on the server's side of ``port``'s connections, not yet read."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip())


def test_a_mesos_master_stopped_past_its_lease_launches_nothing_when_it_resumes(
        ha: HA) -> None:
    """The leading Mesos master stops (SIGSTOP) with a task running in a
    framework's Alloc; a standby takes the Lease; the framework's ACCEPT of the old
    master's offer waits in that master's socket. Woken, the old master takes the
    ACCEPT up before its renewals tell it it lost (they fail for the renew deadline
    first). The task must never run: the Alloc must grow for it, and that write
    carries the old term's fence, which the API refuses. (Into an Alloc with room,
    the old master's own clock holds the direct launch back: Client.term_held,
    tested in test_leader_election; and the agent refuses an older term.)"""
    ha.heal()
    old = wait_for(lambda: _mesos_leader(ha, ha.masters), 90, "a Mesos leader")
    marker = f"sleep 617.{os.getpid()}"  # a command line nothing else runs
    fw = Framework(ha.framework_url(old), "stopped-leader", failover_timeout=3600)
    assert old.proc is not None
    try:
        fw.subscribe()
        fw.accept([unused_offer(fw, "ha-1", 90)["id"]["value"]],
                  [launch(task_info("anchor", "ha-1", "sleep 600", cpus=0.05))])
        fw.wait_update("anchor", "TASK_RUNNING", timeout=90)  # the Alloc stands
        offer_id = unused_offer(fw, "ha-1", 90)["id"]["value"]
        port = ha.mesos_ports[ha.masters.index(old)]
        os.killpg(old.proc.pid, signal.SIGSTOP)
        with ThreadPoolExecutor(1) as pool:
            try:
                survivors = [m for m in ha.masters if m is not old]
                wait_for(lambda: _mesos_leader(ha, survivors), 90, "a new Mesos leader")
                waiting = _bytes_waiting(port)
                answer = pool.submit(fw.accept, [offer_id], [
                    launch(task_info("stale", "ha-1", marker, cpus=0.05))])
                wait_for(lambda: _bytes_waiting(port) > waiting, 30,
                         "the ACCEPT in the stopped master's socket")
            finally:
                os.killpg(old.proc.pid, signal.SIGCONT)
            answer.result(timeout=90)  # whatever it says: what runs is what counts
        wait_for(lambda: "leader lost lease=kube-system/corral-mesos-master" in old.log(),
                 90, "the old Mesos master noticing it lost")

        def reconciled() -> dict[str, str] | None:
            """Both tasks' states from whichever master leads now; None if its stream
            ended first (on a loaded machine, 3 s Leases may change hands again)."""
            leader = _mesos_leader(ha, ha.masters)
            if leader is None:
                return None
            fw.url = ha.framework_url(leader)
            try:
                fw.subscribe()
                fw.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": "anchor"}},
                                                          {"task_id": {"value": "stale"}}]})
                return {task: fw.wait_event("UPDATE", 60, lambda e, t=task: e["update"][
                    "status"].get("reason") == "REASON_RECONCILIATION" and e["update"][
                    "status"]["task_id"]["value"] == t)["update"]["status"]["state"]
                    for task in ("anchor", "stale")}
            except (AssertionError, httpx.HTTPError):
                return None

        states = wait_for(reconciled, 180, "both tasks reconciled by the Mesos leader")
        assert states == {"anchor": "TASK_RUNNING", "stale": "TASK_LOST"}, states
        ran = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True,
                             check=False)
        assert ran.returncode == 1, f"the deposed master's task runs: {ran.stdout}"
        assert fw.call("TEARDOWN").status_code == 202
    finally:
        fw.close()
        ha.heal()
