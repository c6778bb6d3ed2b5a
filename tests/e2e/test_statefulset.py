"""StatefulSets on a real agent: stable names created in order (web-1 only once
web-0 is Running and Ready), identity labels and hostnames, kubectl's table and
rollout status, scale down highest ordinal first, a volumeClaimTemplate's
directory kept across the pod's re-creation, and a selector that does not match
its template refused with 422."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.objects import parse_time, spec, status
from tests.cluster import Master
from tests.conftest import AgentFactory
from tests.kubectl import Kubectl
from tests.poll import wait_for

STSS = "/apis/apps/v1/namespaces/default/statefulsets"
STS = {
    "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
    "spec": {"replicas": 3, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                 "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": "x", "command": [
                     "sh", "-c", 'echo "$HOSTNAME" >> data/starts && exec sleep 300'],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                 # Ready a little after Running: room for a wrong order.
                                 "readinessProbe": {"exec": {"command": ["true"]},
                                                    "initialDelaySeconds": 2,
                                                    "periodSeconds": 1}}]}},
             "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                 "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
}


def web_pods(api: httpx.Client) -> dict[str, dict[str, Any]]:
    pods = api.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").json()["items"]
    return {p["metadata"]["name"]: p for p in pods}


def ready_at(pod: dict[str, Any]) -> Any:
    condition = next((c for c in status(pod).get("conditions") or []
                      if c["type"] == "Ready" and c["status"] == "True"), None)
    return None if condition is None else parse_time(condition["lastTransitionTime"])


@pytest.fixture
def kubectl(fresh_master: Master, tmp_path: Path) -> Kubectl:
    return Kubectl(fresh_master, tmp_path / "kubecache")


def test_ordered_stable_pods(fresh_master: Master, agents: AgentFactory,
                             kubectl: Kubectl) -> None:
    agent = agents(fresh_master, "sts-a", node_ip="127.0.1.55")
    with fresh_master.http() as api:
        bad = copy.deepcopy(STS)
        bad["spec"]["selector"] = {"matchLabels": {"app": "db"}}
        refused = api.post(STSS, json=bad)
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"]["causes"][0]["field"] == "spec.template.metadata.labels"

        assert api.post(STSS, json=STS).status_code == 201
        # Never a later ordinal without every earlier one Ready.
        seen: list[dict[str, dict[str, Any]]] = []

        def all_ready() -> bool:
            pods = web_pods(api)
            seen.append(pods)
            return len(pods) == 3 and all(ready_at(p) for p in pods.values())

        wait_for(all_ready, timeout=90, what="web-0..2 ready")
        for pods in seen:
            for ordinal in range(1, 3):
                if f"web-{ordinal}" in pods:
                    assert ready_at(pods[f"web-{ordinal - 1}"]) is not None, pods.keys()
        pods = web_pods(api)
        web1 = pods["web-1"]
        assert parse_time(web1["metadata"]["creationTimestamp"]) >= ready_at(pods["web-0"])
        labels = web1["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
        assert labels["apps.kubernetes.io/pod-index"] == "1"
        assert (spec(web1)["hostname"], spec(web1)["subdomain"]) == ("web-1", "web")

        rolled = kubectl.run("rollout", "status", "sts/web", "--timeout=60s", timeout=90)
        assert rolled.returncode == 0, rolled.stderr
        header, row = kubectl("get", "sts").strip().split("\n")
        assert header.split() == ["NAME", "READY", "AGE"] and row.split()[:2] == ["web", "3/3"]

        # Scale down: the highest ordinal goes first, one at a time.
        assert kubectl.run("scale", "sts/web", "--replicas=1").returncode == 0
        names: list[set[str]] = []

        def only_web0() -> bool:
            live = {n for n, p in web_pods(api).items() if not p["metadata"].get(
                "deletionTimestamp")}
            names.append(live)
            return live == {"web-0"}

        wait_for(only_web0, timeout=60, what="scaled down to web-0")
        assert all(not ("web-2" in live and "web-1" not in live) for live in names), names
        assert any(live == {"web-0", "web-1"} for live in names)

        # web-0's data directory outlives the pod: recreated, it finds its data.
        first_uid = web_pods(api)["web-0"]["metadata"]["uid"]
        assert api.delete("/api/v1/namespaces/default/pods/web-0").status_code == 200
        wait_for(lambda: (pod := web_pods(api).get("web-0")) is not None and pod["metadata"][
            "uid"] != first_uid and ready_at(pod), timeout=120,
            what=f"web-0 back and ready {[(n, status(p)) for n, p in web_pods(api).items()]}")
        starts = agent.state_dir / "volumes" / "default" / "data-web-0" / "starts"
        assert starts.read_text().split() == ["web-0", "web-0"]


def test_a_recreated_pod_returns_to_the_node_holding_its_data(fresh_master: Master,
                                                              agents: AgentFactory) -> None:
    """web-0 is re-created where its claim's directory is, although the other node
    is emptier (without the preference, spreading would pick the emptier one)."""
    first = agents(fresh_master, "sts-home", node_ip="127.0.1.56")
    one = copy.deepcopy(STS)
    one["metadata"]["name"] = "solo"
    one["spec"].update(replicas=1, serviceName="solo",
                       selector={"matchLabels": {"app": "solo"}})
    one["spec"]["template"]["metadata"]["labels"] = {"app": "solo"}
    with fresh_master.http() as api:
        assert api.post(STSS, json=one).status_code == 201

        def solo() -> dict[str, Any] | None:
            found = api.get("/api/v1/namespaces/default/pods/solo-0")
            return found.json() if found.status_code == 200 else None

        wait_for(lambda: ready_at(solo() or {}), what="solo-0 ready on sts-home")
        assert spec(solo() or {})["nodeName"] == "sts-home"
        agents(fresh_master, "sts-away", node_ip="127.0.1.57")
        ballast = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ballast"},
                   "spec": {"nodeName": "sts-home", "terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "c", "image": "x",
                                            "command": ["sleep", "300"],
                                            "resources": {"requests": {"cpu": "500m",
                                                                       "memory": "1Gi"}}}]}}
        assert api.post("/api/v1/namespaces/default/pods", json=ballast).status_code == 201
        wait_for(lambda: api.get("/api/v1/nodes/sts-away").status_code == 200 and any(
            c["type"] == "Ready" and c["status"] == "True" for c in status(
                api.get("/api/v1/nodes/sts-away").json()).get("conditions") or []),
            what="sts-away Ready")
        sts = api.get(f"{STSS}/solo").json()
        assert "sts-home" in sts["metadata"]["annotations"]["corral.dev/claim-nodes"]
        old_uid = (solo() or {})["metadata"]["uid"]
        assert api.delete("/api/v1/namespaces/default/pods/solo-0").status_code == 200
        wait_for(lambda: (p := solo()) is not None and p["metadata"]["uid"] != old_uid
                 and ready_at(p), what="solo-0 re-created and ready")
        again = solo() or {}
        assert spec(again)["nodeName"] == "sts-home"
        terms = spec(again)["affinity"]["nodeAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"]
        assert terms[-1]["preference"]["matchFields"][0]["values"] == ["sts-home"]
    starts = first.state_dir / "volumes" / "default" / "data-solo-0" / "starts"
    assert starts.read_text().split() == ["solo-0", "solo-0"]
