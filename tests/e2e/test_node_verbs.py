"""`corral cordon|uncordon|drain` and `corral events` on a real cluster: a master
with its scheduler and controllers, two real agents, a Deployment of two pods."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx

from corral.objects import status
from tests.cluster import Master
from tests.conftest import AgentFactory
from tests.poll import wait_for

DEPLOY = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sleepers"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "sleepers"}},
             "template": {"metadata": {"labels": {"app": "sleepers"}},
                          "spec": {"terminationGracePeriodSeconds": 1,
                                   "containers": [{"name": "c", "image": "x",
                                                   "command": ["sleep", "300"]}]}}},
}


def corral(master: Master, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig)}
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def running_pods(api: httpx.Client) -> list[dict[str, Any]]:
    pods = api.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dsleepers").json()
    return [p for p in pods["items"] if status(p).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def test_cordon_drain_uncordon_and_events(fresh_master: Master, agents: AgentFactory) -> None:
    agents(fresh_master, "vn-a", node_ip="127.0.1.41")
    agents(fresh_master, "vn-b", node_ip="127.0.1.42")
    with fresh_master.http() as api:
        assert api.post("/apis/apps/v1/namespaces/default/deployments", json=DEPLOY
                        ).status_code == 201
        wait_for(lambda: len(running_pods(api)) == 2)

        out = corral(fresh_master, "cordon", "vn-b")
        assert out.returncode == 0 and "node/vn-b cordoned" in out.stdout, out.stderr
        assert api.get("/api/v1/nodes/vn-b").json()["spec"]["unschedulable"] is True

        on_a = wait_for(lambda: [p for p in running_pods(api)
                                 if p["spec"]["nodeName"] == "vn-a"] or None)
        out = corral(fresh_master, "drain", "vn-a", "--timeout", "60")
        assert out.returncode == 0, out.stderr
        assert "node/vn-a drained" in out.stdout
        # both nodes cordoned now: the evicted replacements stay pending
        left = api.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dvn-a").json()["items"]
        assert not [p for p in left if p["metadata"]["uid"] in
                    {q["metadata"]["uid"] for q in on_a}]

        out = corral(fresh_master, "uncordon", "vn-a", "vn-b")
        assert out.returncode == 0 and "node/vn-a uncordoned" in out.stdout
        wait_for(lambda: len(running_pods(api)) == 2)

    out = corral(fresh_master, "events", "-A")
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[0].split()
    assert header[:3] == ["NAMESPACE", "LAST", "SEEN"]
    assert "Scheduled" in out.stdout and "SuccessfulCreate" in out.stdout
    out = corral(fresh_master, "events", "--for", "deployment/sleepers")
    assert out.returncode == 0 and "ScalingReplicaSet" in out.stdout


def test_drain_refuses_unmanaged_pods_without_force(fresh_master: Master,
                                                     agents: AgentFactory) -> None:
    agents(fresh_master, "vn-c", node_ip="127.0.1.43")
    with fresh_master.http() as api:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loner"},
               "spec": {"nodeName": "vn-c", "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": "x", "command": ["sleep", "300"]}]}}
        assert api.post("/api/v1/namespaces/default/pods", json=pod).status_code == 201
        out = corral(fresh_master, "drain", "vn-c")
        assert out.returncode == 1 and "declare no controller" in out.stderr
        assert api.get("/api/v1/namespaces/default/pods/loner").status_code == 200
        out = corral(fresh_master, "drain", "vn-c", "--force", "--timeout", "60")
        assert out.returncode == 0, out.stderr
        assert api.get("/api/v1/namespaces/default/pods/loner").status_code == 404
