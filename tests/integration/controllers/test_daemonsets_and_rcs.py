"""DaemonSets and ReplicationControllers on a real `corral master` (nodes are
Node objects the test registers; no agent runs the pods), with the real kubectl,
and `kubectl cluster-info dump`, which lists both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster import Master
from tests.integration.controllers.helpers import (
    APPS,
    CORE,
    create,
    get,
    merge_patch,
    namespace,
    owned_by,
    pods,
    template,
)
from tests.kubectl import Kubectl
from tests.poll import wait_for

NS = "daemons"


@pytest.fixture(scope="module")
def http(master: Master) -> Iterator[httpx.Client]:
    with master.http() as client:
        namespace(client, NS)
        for name, labels, taints in (
                ("edge-1", {"role": "edge"}, []),
                ("edge-2", {"role": "edge"}, [{"key": "dedicated", "value": "db",
                                               "effect": "NoSchedule"}]),
                ("core-1", {"role": "core"}, [])):
            create(client, "/api/v1/nodes", {"metadata": {"name": name, "labels": labels},
                                              "spec": {"taints": taints}})
        yield client


def _daemon_pods(http: httpx.Client, app: str) -> dict[str, dict[str, object]]:
    return {p["spec"]["nodeName"]: p for p in pods(http, NS, app)}


def test_daemonset_runs_one_pod_per_fitting_node(http: httpx.Client, master: Master,
                                                  tmp_path: Path) -> None:
    spec = {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent")}
    spec["template"]["spec"]["nodeSelector"] = {"role": "edge"}
    ds = create(http, f"{APPS}/{NS}/daemonsets", {"metadata": {"name": "agent"},
                                                  "spec": spec})
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 1, "maxSurge": 0}}
    # edge-2's taint is not tolerated, core-1 does not match the node selector.
    placed = wait_for(lambda: _daemon_pods(http, "agent") if set(
        _daemon_pods(http, "agent")) == {"edge-1"} else None, what="a pod on edge-1 only")
    pod = placed["edge-1"]
    assert owned_by(pod, ds["metadata"]["uid"])
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
    status = wait_for(lambda: (get(http, f"{APPS}/{NS}/daemonsets/agent") or {}).get(
        "status", {}).get("currentNumberScheduled") == 1 and get(
        http, f"{APPS}/{NS}/daemonsets/agent"), what="status")["status"]
    assert (status["desiredNumberScheduled"], status["numberMisscheduled"]) == (1, 0)
    # Tolerating the taint brings edge-2 in; a new template rolls the pods over.
    merge_patch(http, f"{APPS}/{NS}/daemonsets/agent", {"metadata": {"annotations": {
        "kubernetes.io/change-cause": "tolerate db"}}, "spec": {"template": {"spec": {
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        "containers": [{"name": "main", "image": "v2", "command": ["sleep", "300"]}]}}}})
    rolled = wait_for(lambda: (found := _daemon_pods(http, "agent")) and set(found) == {
        "edge-1", "edge-2"} and all(p["metadata"]["labels"]["pod-template-generation"] == "2"
                                    for p in found.values()) and found,
        what="generation-2 pods on edge-1 and edge-2")
    assert all(p["spec"]["containers"][0]["image"] == "v2" for p in rolled.values())
    # The new ControllerRevision took the DaemonSet's annotations: its change-cause.
    history = Kubectl(master, tmp_path)("rollout", "history", "ds/agent", "-n", NS)
    assert [line.split(None, 1) for line in history.strip().splitlines()[2:]] == [
        ["1", "<none>"], ["2", "tolerate db"]]


def test_nodes_by_field_selector(http: httpx.Client, master: Master, tmp_path: Path) -> None:
    """A node that never set spec.unschedulable is schedulable to a field
    selector, as in Kubernetes (the field set holds Go's false)."""
    kubectl = Kubectl(master, tmp_path)
    listed = kubectl("get", "nodes", "--field-selector", "spec.unschedulable=false", "-o", "name")
    assert {"node/edge-1", "node/edge-2", "node/core-1"} <= set(listed.split())


def test_replication_controller(http: httpx.Client, master: Master, tmp_path: Path) -> None:
    rc = create(http, f"{CORE}/{NS}/replicationcontrollers", {
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"},
        "spec": {"replicas": 2, "template": template("old")}})
    assert rc["spec"]["selector"] == {"app": "old"}  # defaulted from the template
    assert rc["metadata"]["labels"] == {"app": "old"}
    wait_for(lambda: len(pods(http, NS, "old")) == 2, what="two pods")
    assert all(owned_by(p, rc["metadata"]["uid"]) for p in pods(http, NS, "old"))
    kubectl = Kubectl(master, tmp_path)
    kubectl("scale", "rc/old", "-n", NS, "--replicas=3")
    wait_for(lambda: len(pods(http, NS, "old")) == 3, what="three pods")
    wait_for(lambda: "3" in kubectl("get", "rc", "old", "-n", NS).split(), what="the table")
    header = kubectl("get", "rc", "old", "-n", NS).splitlines()[0].split()
    assert header == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    bad = kubectl.run("create", "-n", NS, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "bad"},
        "spec": {"selector": {"app": "x"}, "template": template("y")}}))
    assert bad.returncode != 0 and "`selector` does not match template `labels`" in bad.stderr


def test_cluster_info_dump(http: httpx.Client, master: Master, tmp_path: Path) -> None:
    kubectl = Kubectl(master, tmp_path / "cache")
    out = tmp_path / "dump"
    kubectl("cluster-info", "dump", "--namespaces", NS, "--output-directory", str(out))
    assert json.loads((out / "nodes.json").read_text())["items"]
    rcs = json.loads((out / NS / "replication-controllers.json").read_text())
    assert [i["metadata"]["name"] for i in rcs["items"]] == ["old"]
    daemons = json.loads((out / NS / "daemonsets.json").read_text())
    assert [i["metadata"]["name"] for i in daemons["items"]] == ["agent"]
    whole = kubectl("cluster-info", "dump", "--all-namespaces")
    assert '"kind": "DaemonSetList"' in whole or '"DaemonSetList"' in whole
