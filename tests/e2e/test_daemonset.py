"""DaemonSets on real agents: one pod per node, a node that joins gets one, a
node that is removed loses it, a template change rolls node by node with
ControllerRevisions kubectl reads (get, rollout status, history and undo), and
deleting the DaemonSet collects both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.objects import labels_of, spec, status
from tests.cluster import Master
from tests.conftest import AgentFactory
from tests.kubectl import Kubectl
from tests.poll import wait_for

APP = "logship"
DSS = "/apis/apps/v1/namespaces/default/daemonsets"
DS = {
    "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": APP},
    "spec": {"selector": {"matchLabels": {"app": APP}},
             "template": {"metadata": {"labels": {"app": APP}},
                          "spec": {"terminationGracePeriodSeconds": 1,
                                   "containers": [{"name": "c", "image": "x",
                                                   "command": ["sleep", "300"]}]}}},
}


def daemon_pods(api: httpx.Client) -> list[dict[str, Any]]:
    pods = api.get(f"/api/v1/namespaces/default/pods?labelSelector=app%3D{APP}").json()
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


def ready_on(api: httpx.Client) -> dict[str, str]:
    """node → revision hash of its ready daemon pod."""
    return {spec(p).get("nodeName"): labels_of(p)["controller-revision-hash"]
            for p in daemon_pods(api)
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in status(p).get("conditions") or [])}


def ds_status(api: httpx.Client) -> dict[str, Any]:
    return dict(status(api.get(f"{DSS}/{APP}").json()))


@pytest.fixture
def kubectl(fresh_master: Master, tmp_path: Path) -> Kubectl:
    return Kubectl(fresh_master, tmp_path / "kubecache")


def test_one_pod_per_node_as_nodes_come_and_go(fresh_master: Master, agents: AgentFactory,
                                               kubectl: Kubectl) -> None:
    agents(fresh_master, "ds-a", node_ip="127.0.1.51")
    with fresh_master.http() as api:
        created = api.post(DSS, json=DS)
        assert created.status_code == 201, created.text
        wait_for(lambda: set(ready_on(api)) == {"ds-a"}, what="a daemon pod on ds-a")

        late = agents(fresh_master, "ds-b", node_ip="127.0.1.52")
        wait_for(lambda: set(ready_on(api)) == {"ds-a", "ds-b"}, what="one on the new node")
        wait_for(lambda: ds_status(api).get("numberAvailable") == 2, what="status counts 2")
        first_hash = ready_on(api)["ds-a"]
        assert kubectl.run("rollout", "status", f"ds/{APP}", "--timeout=60s",
                           timeout=90).returncode == 0
        header, row = kubectl("get", "ds").strip().split("\n")
        assert header.split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE",
                                  "AVAILABLE", "NODE", "SELECTOR", "AGE"]
        assert row.split()[:7] == [APP, "2", "2", "2", "2", "2", "<none>"]

        # A new template rolls node by node (maxUnavailable 1) to the new revision.
        changed = kubectl.run("set", "env", f"ds/{APP}", "V=2")
        assert changed.returncode == 0, changed.stderr
        rolled = kubectl.run("rollout", "status", f"ds/{APP}", "--timeout=90s", timeout=120)
        assert rolled.returncode == 0, rolled.stderr
        assert "successfully rolled out" in rolled.stdout
        hashes = ready_on(api)
        assert set(hashes) == {"ds-a", "ds-b"} and first_hash not in hashes.values()
        history = kubectl("rollout", "history", f"ds/{APP}")
        assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["1", "2"]
        # Undo: back to the first template (its revision renumbered 3).
        undone = kubectl.run("rollout", "undo", f"ds/{APP}")
        assert undone.returncode == 0, undone.stderr
        assert kubectl.run("rollout", "status", f"ds/{APP}", "--timeout=90s",
                           timeout=120).returncode == 0
        wait_for(lambda: set(ready_on(api).values()) == {first_hash}, what="first template back")
        history = kubectl("rollout", "history", f"ds/{APP}")
        assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["2", "3"]

        # The node leaves: its pod goes with it.
        late.stop()
        assert api.delete("/api/v1/nodes/ds-b").status_code == 200
        wait_for(lambda: {spec(p).get("nodeName") for p in daemon_pods(api)} == {"ds-a"},
                 what="ds-b's pod deleted")
        wait_for(lambda: ds_status(api).get("desiredNumberScheduled") == 1,
                 what="desired back to 1")

        # Deleting the DaemonSet collects its pods and revisions (ownerReferences).
        assert api.delete(f"{DSS}/{APP}").status_code == 200
        revisions = "/apis/apps/v1/namespaces/default/controllerrevisions"
        wait_for(lambda: not daemon_pods(api) and not api.get(revisions).json()["items"],
                 what="pods and revisions collected")
