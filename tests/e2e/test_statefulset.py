"""StatefulSets on a real agent: stable names created in order (web-1 only once
web-0 is Running and Ready), identity labels and hostnames, kubectl's table and
rollout status, scale down highest ordinal first, a volumeClaimTemplate's
directory kept across the pod's re-creation (on the node that holds it), each
pod's DNS name under the headless Service, and a selector that does not match
its template refused with 422."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from dnslib import QTYPE, DNSRecord  # type: ignore[import-untyped]

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
                     "sh", "-c", ('echo "$HOSTNAME" >> data/starts && echo "$CORRAL_DNS" > data/dns'
                                 ' && exec sleep 300')],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                 # Ready a little after Running: room for a wrong order.
                                 "readinessProbe": {"exec": {"command": ["true"]},
                                                    "initialDelaySeconds": 2,
                                                    "periodSeconds": 1}}]}},
             "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                 "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
}


HEADLESS = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}
# Makes sts-a the busier node: a re-created web-0 must still prefer it.
BALLAST = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ballast"},
           "spec": {"nodeName": "sts-a", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": "x", "command": ["sleep", "300"],
                                    "resources": {"requests": {"cpu": "500m",
                                                               "memory": "1Gi"}}}]}}


def dns_of(server_file: Path) -> Callable[[str], set[str]]:
    """A resolver asking the DNS server named in ``server_file`` (host:port)."""
    host, _, port = server_file.read_text().strip().partition(":")

    def answer(name: str) -> set[str]:
        reply = DNSRecord.parse(DNSRecord.question(name).send(host, int(port), timeout=3.0))
        return {str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A}

    return answer


def web_pods(api: httpx.Client) -> dict[str, dict[str, Any]]:
    pods = api.get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb").json()["items"]
    return {p["metadata"]["name"]: p for p in pods}


def deletion_order(api: httpx.Client, since: str,
                   until: tuple[str, str]) -> list[tuple[str, str]]:
    """The web pods' deletion steps since resourceVersion ``since``, in the order
    the watch tells them: ("marked", name) at its deletionTimestamp, ("gone", name)."""
    order: list[tuple[str, str]] = []
    with api.stream("GET", "/api/v1/namespaces/default/pods", params={
            "watch": "1", "resourceVersion": since, "labelSelector": "app=web",
            "timeoutSeconds": "10"}) as stream:
        for line in stream.iter_lines():
            event = json.loads(line)
            name = event["object"]["metadata"]["name"]
            step = ("gone", name) if event["type"] == "DELETED" else (
                ("marked", name) if event["object"]["metadata"].get("deletionTimestamp")
                else None)
            if step is not None and step not in order:
                order.append(step)
            if step == until:
                break
    return order


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

        assert api.post("/api/v1/namespaces/default/services", json=HEADLESS).status_code == 201
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

        # Each pod is <pod>.<service>.<ns>.svc.cluster.local at the DNS server pods get.
        answer = dns_of(agent.state_dir / "volumes" / "default" / "data-web-0" / "dns")
        for name, pod in pods.items():
            ip = status(pod)["podIP"]
            wait_for(lambda name=name, ip=ip: answer(f"{name}.web.default.svc.cluster.local")
                     == {ip}, what=f"{name}'s own DNS name")
        assert answer("web-3.web.default.svc.cluster.local") == set()

        rolled = kubectl.run("rollout", "status", "sts/web", "--timeout=60s", timeout=90)
        assert rolled.returncode == 0, rolled.stderr
        header, row = kubectl("get", "sts").strip().split("\n")
        assert header.split() == ["NAME", "READY", "AGE"] and row.split()[:2] == ["web", "3/3"]

        # Scale down: the highest ordinal goes first, one at a time — web-1 is not
        # marked for deletion before web-2 is gone. The watch replays from before
        # the scale, so no intermediate state can be missed between two polls.
        since = api.get("/api/v1/namespaces/default/pods").json()["metadata"]["resourceVersion"]
        assert kubectl.run("scale", "sts/web", "--replicas=1").returncode == 0
        wait_for(lambda: set(web_pods(api)) == {"web-0"}, timeout=60, what="scaled down to web-0")
        assert deletion_order(api, since, until=("gone", "web-1")) == [
            ("marked", "web-2"), ("gone", "web-2"), ("marked", "web-1"), ("gone", "web-1")]

        # web-0's data directory outlives the pod: recreated, it returns to the node
        # holding it and finds its data, although another node is now emptier
        # (without the preference, spreading would pick that one).
        agents(fresh_master, "sts-b", node_ip="127.0.1.56")
        assert api.post("/api/v1/namespaces/default/pods", json=BALLAST).status_code == 201
        wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True" for c in status(
            api.get("/api/v1/nodes/sts-b").json()).get("conditions") or []),
            what="sts-b Ready")
        sts = api.get(f"{STSS}/web").json()
        assert "sts-a" in sts["metadata"]["annotations"]["corral.dev/claim-nodes"]
        first_uid = web_pods(api)["web-0"]["metadata"]["uid"]
        assert api.delete("/api/v1/namespaces/default/pods/web-0").status_code == 200
        wait_for(lambda: (pod := web_pods(api).get("web-0")) is not None and pod["metadata"][
            "uid"] != first_uid and ready_at(pod), timeout=120,
            what=f"web-0 back and ready {[(n, status(p)) for n, p in web_pods(api).items()]}")
        again = web_pods(api)["web-0"]
        assert spec(again)["nodeName"] == "sts-a"
        terms = spec(again)["affinity"]["nodeAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"]
        assert terms[-1]["preference"]["matchFields"][0]["values"] == ["sts-a"]
        starts = agent.state_dir / "volumes" / "default" / "data-web-0" / "starts"
        assert starts.read_text().split() == ["web-0", "web-0"]

