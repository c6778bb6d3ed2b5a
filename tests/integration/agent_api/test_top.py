"""metrics.k8s.io from the agents' usage: `kubectl top nodes|pods` and the
NodeMetrics/PodMetrics objects autoscalers read."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.cluster import Agent, Master
from tests.integration.agent_api.conftest import create_pod, make_pod, phase, wait_pod
from tests.kubectl import Kubectl

METRICS = "/apis/metrics.k8s.io/v1beta1"
# Burns CPU and holds 40 MiB. (How much of that a cgroup v1 working set shows
# varies by kernel, so memory is only required to be measured at all.)
HOG = ["python3", "-c", "b = b\"x\" * (40 << 20)\nwhile True: sum(range(10000))"]


@pytest.fixture(scope="module")
def hog(node: Agent, master: Master) -> str:
    # A CPU request gives it cgroup CPU shares: without one (BestEffort) it gets
    # almost nothing on a machine busy with other work.
    pod = make_pod("hog", node.name, HOG, resources={"requests": {"cpu": "500m"}})
    pod["metadata"]["labels"] = {"app": "hog"}
    with master.http() as http:
        create_pod(http, pod)
        wait_pod(http, "hog", lambda p: phase(p) == "Running")
    return "hog"


def _millicores(quantity: str) -> float:
    assert quantity.endswith("n"), quantity
    return int(quantity[:-1]) / 1e6


def test_pod_and_node_metrics(hog: str, node: Agent, http: httpx.Client) -> None:
    pm = http.get(f"{METRICS}/namespaces/default/pods/{hog}").json()
    assert (pm["kind"], pm["apiVersion"]) == ("PodMetrics", "metrics.k8s.io/v1beta1")
    assert pm["metadata"]["labels"] == {"app": "hog"}
    [container] = pm["containers"]
    assert container["name"] == "main"
    assert _millicores(container["usage"]["cpu"]) > 0
    assert int(container["usage"]["memory"].removesuffix("Ki")) > 0
    assert pm["window"].endswith("s") and pm["timestamp"].endswith("Z")
    listed = http.get(f"{METRICS}/pods", params={"labelSelector": "app=hog"}).json()
    assert [i["metadata"]["name"] for i in listed["items"]] == [hog]
    nm = http.get(f"{METRICS}/nodes/{node.name}").json()
    assert nm["kind"] == "NodeMetrics" and _millicores(nm["usage"]["cpu"]) > 0
    missing = http.get(f"{METRICS}/nodes/no-such-node")
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    assert http.delete(f"{METRICS}/nodes/{node.name}").status_code == 405


def test_kubectl_top(hog: str, node: Agent, master: Master, tmp_path: Path) -> None:
    kubectl = Kubectl(master, tmp_path / "cache")
    rows = [line.split() for line in kubectl("top", "nodes").splitlines()]
    assert rows[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    mine = next(r for r in rows if r[0] == node.name)
    assert mine[1].endswith("m") and int(mine[1][:-1]) > 0
    pods = [line.split() for line in kubectl("top", "pods", "-l", "app=hog").splitlines()]
    assert pods[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert pods[1][0] == hog and int(pods[1][1].removesuffix("m")) > 0
    assert pods[1][2].endswith("Mi") and int(pods[1][2][:-2]) >= 0
    out = json.loads(kubectl("get", "--raw", f"{METRICS}/namespaces/default/pods"))
    assert hog in [i["metadata"]["name"] for i in out["items"]]
