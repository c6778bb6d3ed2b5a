"""PodDisruptionBudgets on a real cluster: evictions that would break a budget
are refused with 429, `corral drain` waits (retrying as kubectl does) until
replacements are Ready elsewhere, and kubectl drain gives up with Kubernetes'
words when no replacement can come."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.objects import status
from tests.cluster import Master
from tests.conftest import AgentFactory
from tests.kubectl import Kubectl
from tests.poll import wait_for

APP = "guarded"
DEPLOY = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": APP}},
             "template": {"metadata": {"labels": {"app": APP}},
                          "spec": {"terminationGracePeriodSeconds": 1,
                                   "containers": [{"name": "c", "image": "x",
                                                   "command": ["sleep", "300"]}]}}},
}
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": APP},
       "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": APP}}}}
PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def ready_pods(api: httpx.Client, node: str | None = None) -> list[dict[str, Any]]:
    pods = api.get(f"/api/v1/namespaces/default/pods?labelSelector=app%3D{APP}").json()
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in (status(p)).get("conditions") or [])
            and node in (None, p["spec"].get("nodeName"))]


def budget(api: httpx.Client) -> dict[str, Any]:
    return dict(status(api.get(f"{PDBS}/{APP}").json()))


@pytest.fixture
def kubectl(fresh_master: Master, tmp_path: Path) -> Kubectl:
    return Kubectl(fresh_master, tmp_path / "kubecache")


def test_drain_waits_for_the_budget(fresh_master: Master, agents: AgentFactory,
                                    kubectl: Kubectl) -> None:
    agents(fresh_master, "pdb-a", node_ip="127.0.1.45")
    with fresh_master.http() as api:
        assert api.post("/apis/apps/v1/namespaces/default/deployments", json=DEPLOY
                        ).status_code == 201
        wait_for(lambda: len(ready_pods(api, "pdb-a")) == 2, what="2 ready pods on pdb-a")
        agents(fresh_master, "pdb-b", node_ip="127.0.1.46")
        assert api.post(PDBS, json=PDB).status_code == 201
        wait_for(lambda: budget(api).get("currentHealthy") == 2, what="budget observed")
        assert budget(api)["disruptionsAllowed"] == 0

        victim = ready_pods(api)[0]["metadata"]["name"]
        refused = api.post(f"/api/v1/namespaces/default/pods/{victim}/eviction",
                           json={"apiVersion": "policy/v1", "kind": "Eviction",
                                 "metadata": {"name": victim}})
        assert refused.status_code == 429, refused.text
        status = refused.json()
        assert status["reason"] == "TooManyRequests" and status["message"] == VIOLATION
        assert status["details"]["causes"][0]["reason"] == "DisruptionBudget"

        table = kubectl("get", "pdb")
        assert table.split("\n")[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX",
                                                "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
        assert table.split("\n")[1].split()[:4] == [APP, "2", "N/A", "0"]

        env = {**os.environ, "KUBECONFIG": str(fresh_master.kubeconfig)}
        drain = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "drain", "pdb-a",
                                  "--timeout", "120"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: api.get("/api/v1/nodes/pdb-a").json()["spec"].get(
                "unschedulable"), what="pdb-a cordoned")
            assert len(ready_pods(api, "pdb-a")) == 2  # the budget holds them
            # Two more replicas land on pdb-b; once Ready, the budget frees two.
            assert api.patch(f"/apis/apps/v1/namespaces/default/deployments/{APP}/scale",
                             json={"spec": {"replicas": 4}},
                             headers={"content-type": "application/merge-patch+json"}
                             ).status_code == 200
            out, err = drain.communicate(timeout=120)
        finally:
            drain.kill()
        assert drain.returncode == 0, err
        assert "(will retry after 5s): " + VIOLATION in err
        assert "node/pdb-a drained" in out
        assert len(ready_pods(api)) >= 2  # never below the budget

        wait_for(lambda: len(ready_pods(api, "pdb-b")) == 4, timeout=90, what="4 on pdb-b")
        # Both nodes cordoned now: kubectl drain evicts what the budget allows
        # (4 ready, 2 needed) and gives up on the rest with Kubernetes' words.
        wait_for(lambda: budget(api).get("disruptionsAllowed") == 2, what="budget of 2")
        result = kubectl.run("drain", "pdb-b", "--timeout=12s", timeout=90)
        assert result.returncode != 0
        assert VIOLATION in result.stderr
        assert len(ready_pods(api)) == 2
