"""`corral up` supervises: kill -9 one agent of three and the cluster stays up, the
node goes NotReady, its pod is replaced on another node, and `up` says what died
and how to start it again; Ctrl-C then stops every process it started. In
nftables mode (in a network namespace of the test's own) it leaves no table
behind even when every agent was killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]
import yaml

from tests.cluster import free_port_block, kill_pods, node_home
from tests.netns import Netns
from tests.poll import wait_for

EXAMPLE_WEB = Path(__file__).resolve().parents[2] / "examples" / "web.yaml"
DEPLOY = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "spread"}},
             "template": {"metadata": {"labels": {"app": "spread"}},
                          "spec": {"terminationGracePeriodSeconds": 1,
                                   "containers": [{"name": "c", "image": "x",
                                                   "command": ["sleep", "600"]}]}}},
}


class Up:
    """A real `corral up` process with its console in a file."""

    def __init__(self, base: Path, *args: str, netns: Netns | None = None) -> None:
        """The data dir (agents' state inside, as `up` lays it out) is where its
        pods' user may pass through; ``base / "data"`` leads to it."""
        self.base = base
        self.console = base / "console.txt"
        # --listen's port, masters' after it, then their Mesos ports (up to 3 masters)
        self.port = free_port_block(7)
        self.mesos_port = self.port + 4
        with open(self.console, "wb") as out:
            self.proc = subprocess.Popen(
                [*(netns.prefix() if netns else []),
                 sys.executable, "-m", "corral.cli.main", "up", "--data-dir",
                 str(node_home(base / "data")), "--listen", f"127.0.0.1:{self.port}",
                 "--mesos-listen", f"127.0.0.1:{self.mesos_port}", *args],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.console.read_text(errors="replace")

    def wait_up(self) -> None:
        wait_for(lambda: "corral is up" in self.text() or self.proc.poll() is not None,
                 180.0, "corral up printing 'corral is up'")
        assert self.proc.poll() is None, self.text()

    def api(self) -> httpx.Client:
        cfg = yaml.safe_load((self.base / "data" / "kubeconfig").read_text())
        return httpx.Client(base_url=cfg["clusters"][0]["cluster"]["server"],
                            verify=str(self.base / "data" / "pki" / "ca.crt"),
                            headers={"Authorization":
                                     f"Bearer {cfg['users'][0]['user']['token']}"},
                            timeout=30.0)

    def descendants(self) -> list[int]:
        return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]

    def interrupt(self) -> int:
        os.kill(self.proc.pid, signal.SIGINT)
        return self.proc.wait(120)

    def cleanup(self) -> None:
        """After a failure: every process `up` started (each in a session of its
        own), then `up` itself, by PID."""
        if self.proc.poll() is None:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                child.kill()
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for agent_dir in (self.base / "data" / "agents").glob("*"):
            kill_pods(agent_dir)


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in node.get("status", {}).get("conditions", []))


def _running(api: httpx.Client) -> list[dict[str, Any]]:
    pods = api.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dspread").json()
    return [p for p in pods["items"] if p.get("status", {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def _agents_have_their_own_credentials(base: Path, admin: httpx.Client, victim: str) -> None:
    """Each agent runs as system:node:<name> (its pods ran with it), with the client
    certificate it got by TLS bootstrapping, never as the admin: it may not delete
    another node. The bootstrap token `up` handed out is revoked once all are Ready."""
    other = "node-2" if victim != "node-2" else "node-1"
    cfg = yaml.safe_load((base / "data" / "agents" / victim / "kubeconfig").read_text())
    user = cfg["users"][0]["user"]
    assert "token" not in user
    tls = ssl.create_default_context(cafile=str(base / "data" / "pki" / "ca.crt"))
    tls.load_cert_chain(user["client-certificate"], user["client-key"])
    with httpx.Client(base_url=str(admin.base_url), verify=tls, timeout=30) as as_node:
        me = as_node.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json={
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert me.json()["status"]["userInfo"]["username"] == f"system:node:{victim}"
        refused = as_node.delete(f"/api/v1/nodes/{other}")
        assert refused.status_code == 403, refused.text
    boot = yaml.safe_load((base / "data" / "bootstrap-kubeconfig").read_text())
    revoked = admin.get("/api/v1/namespaces", headers={
        "Authorization": f"Bearer {boot['users'][0]['user']['token']}"})
    assert revoked.status_code == 401


def test_a_killed_agent_is_a_dead_node_and_the_cluster_stays_up(tmp_path: Path) -> None:
    up = Up(tmp_path, "--agents", "3", "--proxy-mode", "userspace", "--apply", str(EXAMPLE_WEB))
    try:
        up.wait_up()
        assert f"dashboard:  https://127.0.0.1:{up.port}/ui/" in up.text()
        assert f"mesos:      http://127.0.0.1:{up.mesos_port}" in up.text()
        assert httpx.get(f"http://127.0.0.1:{up.mesos_port}/version").json()[
            "version"] == "1.11.0"  # the Mesos scheduler API, on by default
        # ... authenticated by default: the banner names the principal and secret
        # it wrote to the data dir; without them a framework is refused.
        secret = json.loads((up.base / "data" / "mesos-credentials").read_text())[
            "credentials"][0]["secret"]
        assert f"principal corral-framework, secret {secret}" in up.text()
        subscribe = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "name": "x", "user": ""}}}
        assert httpx.post(f"http://127.0.0.1:{up.mesos_port}/api/v1/scheduler",
                          json=subscribe).status_code == 401
        with up.api() as api:
            assert api.post("/apis/apps/v1/namespaces/default/deployments",
                            json=DEPLOY).status_code == 201
            pods = wait_for(lambda: len(_running(api)) == 3 and _running(api), 120.0,
                            "three running pods")
            # The README's example: its web servers, run as the default pod user in
            # working directories under up's data dir, answer their readiness probes.
            wait_for(lambda: api.get("/apis/apps/v1/namespaces/demo/deployments/web").json()
                     .get("status", {}).get("availableReplicas") == 3, 120.0,
                     "the example's web Deployment available")
            victim = pods[0]["spec"]["nodeName"]
            _agents_have_their_own_credentials(tmp_path, api, victim)
            node = api.get(f"/api/v1/nodes/{victim}").json()
            pid = int(node["metadata"]["annotations"]["corral.dev/agent-pid"])
            os.kill(pid, signal.SIGKILL)

            wait_for(lambda: f"{victim} (agent, pid {pid}) exited (killed by SIGKILL)"
                     in up.text(), 30.0, "up reporting the dead agent")
            assert f"agent --server https://127.0.0.1:{up.port} --name {victim}" in up.text()
            wait_for(lambda: not _ready(api.get(f"/api/v1/nodes/{victim}").json()), 60.0,
                     f"{victim} NotReady")
            replaced = wait_for(
                lambda: [p for p in _running(api) if p["spec"]["nodeName"] != victim]
                if len([p for p in _running(api) if p["spec"]["nodeName"] != victim]) == 3
                else None, 120.0, "three running pods off the dead node")
            assert {p["metadata"]["name"] for p in replaced} != {
                p["metadata"]["name"] for p in pods}
            assert up.proc.poll() is None  # the rest of the cluster kept running
            others = [n["metadata"]["name"] for n in api.get("/api/v1/nodes").json()["items"]
                      if _ready(n)]
            assert sorted(others) == sorted({"node-1", "node-2", "node-3"} - {victim})
        children = up.descendants()
        assert up.interrupt() == 0
        assert "stopping the cluster" in up.text()
        assert [p for p in children if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []
    finally:
        up.cleanup()


def test_no_nftables_table_is_left_even_when_every_agent_was_killed(
        netns: Callable[[], Netns], tmp_path: Path) -> None:
    ns = netns()
    up = Up(tmp_path, "--agents", "2", netns=ns)

    def tables() -> list[str]:
        return [line.split()[-1] for line in ns.sh("nft", "list", "tables").splitlines()]

    try:
        up.wait_up()
        table = wait_for(tables, 30.0, "the agents' table")
        assert table[0].startswith("corral-")
        agents = [p for p in psutil.Process(up.proc.pid).children()
                  if "agent" in p.cmdline()]
        assert len(agents) == 2
        for agent in agents:
            agent.kill()  # no agent is left to remove the table
        wait_for(lambda: up.text().count("killed by SIGKILL") == 2, 30.0, "both agents dead")
        assert tables() == table
        assert up.interrupt() == 0
        assert f"removed the agents' nftables table ip {table[0]}" in up.text()
        assert tables() == []
    finally:
        up.cleanup()


def _kubectl(up: Up, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(up.base / "data" / "kubeconfig")}
    return subprocess.run(["kubectl", "--cache-dir", str(up.base / "kube-cache"),
                           "--request-timeout", "20s", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def test_three_masters_survive_the_leader_killed_and_kubectl_keeps_its_address(
        tmp_path: Path) -> None:
    up = Up(tmp_path, "--masters", "3")
    try:
        up.wait_up()
        assert "etcd:" in up.text() and "masters:" in up.text()
        assert f"server: https://127.0.0.1:{up.port}" in (
            up.base / "data" / "kubeconfig").read_text()  # the front, not one master
        assert _kubectl(up, "get", "ns", "kube-system").returncode == 0
        with up.api() as api:
            holder = api.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                             "corral-scheduler").json()["spec"]["holderIdentity"]
        port = holder.rsplit(":", 1)[1]
        leader = next(p for p in psutil.Process(up.proc.pid).children()
                      if f"127.0.0.1:{port}" in " ".join(p.cmdline()) and
                      "master" in p.cmdline())
        leader.kill()
        wait_for(lambda: f"(master, pid {leader.pid}) exited (killed by SIGKILL)" in up.text(),
                 30.0, "up reporting the dead master")
        cm = ('{"apiVersion": "v1", "kind": "ConfigMap", '
              '"metadata": {"name": "after-leader-kill", "namespace": "default"}}')
        wait_for(lambda: _kubectl(up, "apply", "-f", "-", stdin=cm).returncode == 0, 60.0,
                 "kubectl writing through the front after the kill")
        got = _kubectl(up, "get", "configmap", "after-leader-kill", "-o", "name")
        assert got.stdout.strip() == "configmap/after-leader-kill", got.stderr

        def new_leader() -> bool:
            with up.api() as api:
                lease = api.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                                "corral-scheduler").json()
            return lease["spec"].get("holderIdentity") not in ("", holder)

        wait_for(new_leader, 60.0, "a standby leading the scheduler")
        children = up.descendants()
        assert up.interrupt() == 0
        assert [p for p in children if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []
    finally:
        up.cleanup()


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """A port one of the masters needs is in use: `up` says which and whose, and
    starts nothing (it used to start the others and then report a dead master)."""
    base = free_port_block(7)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", base + 2))
        squatter.listen()
        up = Up(tmp_path, "--masters", "3", "--listen", f"127.0.0.1:{base}",
                "--mesos-listen", f"127.0.0.1:{base + 4}")
        try:
            assert up.proc.wait(60) != 0
            assert (f"cannot start: 127.0.0.1:{base + 2} (master-2): Address already in use"
                    in up.text()), up.text()
            data = str(node_home(tmp_path / "data"))
            assert not [p for p in psutil.process_iter(["cmdline"])
                        if data in " ".join(p.info["cmdline"] or ())]
        finally:
            up.cleanup()
