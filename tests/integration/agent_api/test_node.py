"""Registration and heartbeat as the master sees them, and `corral top`."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
import time

import httpx

from tests.cluster import Agent, Master
from tests.integration.agent_api.conftest import create_pod, make_pod, phase, wait_pod
from tests.poll import wait_for

MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_node_registration(node: Agent, http: httpx.Client) -> None:
    got = http.get(f"/api/v1/nodes/{node.name}").json()
    labels = got["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == node.name
    assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"]
    status = got["status"]
    assert {"type": "InternalIP", "address": node.node_ip} in status["addresses"]
    assert {"type": "Hostname", "address": node.name} in status["addresses"]
    assert set(status["capacity"]) >= {"cpu", "memory", "ephemeral-storage", "pods"}
    assert status["allocatable"]["pods"] == "110"
    port = status["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    # HTTPS with the node's own certificate from the cluster CA, for its name.
    tls = ssl.create_default_context(cafile=str(node.master.ca_path))
    with httpx.Client(verify=tls) as agent:
        healthz = agent.build_request("GET", f"https://{node.node_ip}:{port}/healthz",
                                      extensions={"sni_hostname": node.name})
        assert agent.send(healthz).text == "ok"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    for pressure in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert conditions[pressure]["status"] in ("True", "False")
    isolation = got["metadata"]["annotations"]["corral.dev/isolation"]
    assert isolation in ("cgroup-v2", "cgroup-v1", "rlimits")
    assert (conditions["Isolated"]["status"] == "False") == (isolation == "rlimits")
    assert status["nodeInfo"]["containerRuntimeVersion"].endswith(isolation)


def test_agent_server_answers_only_the_masters_certificate(
        node: Agent, http: httpx.Client, master: Master) -> None:
    base = f"https://{node.node_ip}:{master.agent_port(node.name)}"
    plain = master.agent_tls()
    assert httpx.get(f"{base}/stats/summary", verify=plain).status_code == 401
    # No token is taken, not even the admin's (none is sent on to be checked).
    assert httpx.get(f"{base}/stats/summary", verify=plain,
                     headers={"Authorization": f"Bearer {master.token}"}).status_code == 401
    ok = httpx.get(f"{base}/stats/summary", verify=master.as_master_to_agents())
    assert ok.status_code == 200 and ok.json()["node"]["nodeName"] == node.name


def test_lease_is_renewed(node: Agent, http: httpx.Client) -> None:
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}"
    first = http.get(path).json()["spec"]
    assert first["holderIdentity"] == node.name
    assert first["leaseDurationSeconds"] == 40
    assert MICRO_TIME.match(first["renewTime"])
    deadline = time.monotonic() + 10
    while http.get(path).json()["spec"]["renewTime"] == first["renewTime"]:
        assert time.monotonic() < deadline, "the lease was not renewed"
        time.sleep(0.1)


def test_cpu_and_memory_overrides(master: Master, agents: object) -> None:
    sliced = agents(master, "node-slice", "--cpus", "1.5", "--memory", "3Gi",  # type: ignore[operator]
                    "--reserve-memory", "1Gi", "--reserve-cpu", "500m", "--status-interval", "1",
                    node_ip="127.0.1.21")
    with master.http() as http:
        status = http.get(f"/api/v1/nodes/{sliced.name}").json()["status"]
        assert status["capacity"]["cpu"] == "1500m" and status["capacity"]["memory"] == "3Gi"
        assert status["allocatable"]["cpu"] == "1" and status["allocatable"]["memory"] == "2Gi"
        # The agent posts its status on top of the Node its last post left, without
        # reading it first; once someone else wrote the Node (a label here) that post
        # is refused, and it reads the Node and posts again, keeping what they wrote.
        path = f"/api/v1/nodes/{sliced.name}"
        labelled = http.patch(path, json={"metadata": {"labels": {"reposted": "yes"}}},
                              headers={"Content-Type": "application/merge-patch+json"})
        assert labelled.status_code == 200, labelled.text

        def reposted() -> dict[str, object] | None:
            node = http.get(path).json()
            beats = {c["lastHeartbeatTime"] for c in node["status"]["conditions"]}
            rv = int(node["metadata"]["resourceVersion"])
            after = rv > int(labelled.json()["metadata"]["resourceVersion"])
            return node if after and beats != before else None

        before = {c["lastHeartbeatTime"] for c in labelled.json()["status"]["conditions"]}
        node = wait_for(reposted, timeout=20, what="a status post after the label")
        assert node["metadata"]["labels"]["reposted"] == "yes"


def test_top_nodes_and_pods(master: Master, node: Agent, http: httpx.Client) -> None:
    busy = ["python3", "-c", "x = bytearray(30 * 1024 * 1024)\nwhile True: pass"]
    create_pod(http, make_pod("spinner", node.name, busy,
                              resources={"limits": {"cpu": "200m"}}))
    create_pod(http, make_pod("finished", node.name, ["true"]))
    wait_pod(http, "spinner", lambda p: phase(p) == "Running")
    wait_pod(http, "finished", lambda p: phase(p) == "Succeeded")

    def top(*what: str) -> str:
        out = subprocess.run([sys.executable, "-m", "corral.cli.main", "top", *what,
                              "--kubeconfig", str(master.kubeconfig)],
                             check=False, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def spinner_row() -> list[str] | None:
        rows = [line.split() for line in top("pods").splitlines()[1:]]
        row = next((r for r in rows if r[0] == "spinner"), None)
        return row if row is not None and int(row[1].removesuffix("m")) > 0 else None

    pods = top("pods")
    assert pods.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    row = wait_for(spinner_row, timeout=30, what="the spinner's CPU in top")
    assert int(row[2].removesuffix("Mi")) >= 20
    # a pod with no running container has no metrics, as with metrics-server
    assert "finished" not in [line.split()[0] for line in top("pods").splitlines()]
    nodes = top("nodes")
    assert nodes.splitlines()[0].split()[:2] == ["NAME", "CPU(cores)"]
    assert any(line.split()[0] == node.name for line in nodes.splitlines()[1:])
    for name in ("spinner", "finished"):
        http.delete(f"/api/v1/namespaces/default/pods/{name}")


def test_an_agent_whose_node_is_deleted_registers_again(node: Agent, http: httpx.Client) -> None:
    uid = http.get(f"/api/v1/nodes/{node.name}").json()["metadata"]["uid"]
    assert http.delete(f"/api/v1/nodes/{node.name}").status_code == 200

    def registered_again() -> bool:
        r = http.get(f"/api/v1/nodes/{node.name}")
        return r.status_code == 200 and r.json()["metadata"]["uid"] != uid and bool(
            r.json().get("status", {}).get("conditions"))

    # The agent posts its status every 10 s at most; that is when it notices.
    wait_for(registered_again, timeout=60, what="the Node registered again")
