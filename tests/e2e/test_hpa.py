"""The HorizontalPodAutoscaler on a real cluster: a CPU-busy Deployment is scaled
up from the agents' metrics, and back down, after the short scale-down
stabilization window its behavior sets, once the load stops.

The pods spin only while a flag file exists (a pod is a process on this
machine, run as the agents' unprivileged pod user: the file's folder is open
to it), limited by their cgroup to 200m against a 100m request, so the load
is 200% of requests while it lasts and nothing once the file is gone."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from corral.objects import spec, status
from tests.cluster import Master
from tests.conftest import AgentFactory
from tests.kubectl import Kubectl
from tests.poll import wait_for

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
HPAS = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"


@pytest.fixture
def hpa_master(tmp_path: Path) -> Any:
    # One look per second instead of Kubernetes' 15 s, so the test takes seconds.
    m = Master(tmp_path / "master", env={**os.environ, "CORRAL_HPA_SYNC_PERIOD": "1"}).start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def flag_dir() -> Any:
    # pytest's tmp_path is under a folder only root may enter; the pods' user must
    # see the flag.
    folder = Path(tempfile.mkdtemp(prefix="corral-hpa-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def busy_deployment(flag: Path) -> dict[str, Any]:
    loop = f'while [ -e "{flag}" ]; do :; done; exec sleep 3600'
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "busy"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "busy"}},
                 "template": {"metadata": {"labels": {"app": "busy"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "spin", "image": "x", "command": ["sh", "-c", loop],
                                     "resources": {"requests": {"cpu": "100m"},
                                                   "limits": {"cpu": "200m"}}}]}}},
    }


HPA = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "busy"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "busy"},
             "minReplicas": 1, "maxReplicas": 2,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                 "type": "Utilization", "averageUtilization": 50}}}],
             "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5, "policies": [
                 {"type": "Percent", "value": 100, "periodSeconds": 5}]}}},
}


def test_a_busy_deployment_scales_up_and_back_down(hpa_master: Master, agents: AgentFactory,
                                                   tmp_path: Path, flag_dir: Path) -> None:
    agents(hpa_master, "hpa-a", node_ip="127.0.1.61")
    flag = flag_dir / "busy"
    flag.touch(mode=0o644)
    kubectl = Kubectl(hpa_master, tmp_path / "kubecache")
    with hpa_master.http() as api:
        assert api.post(DEPLOYS, json=busy_deployment(flag)).status_code == 201
        assert api.post(HPAS, json=HPA).status_code == 201

        def replicas() -> int:
            return int(spec(api.get(f"{DEPLOYS}/busy").json()).get("replicas") or 0)

        def utilization() -> int:
            # A round may have no reading (a pod within its first metric window
            # counts as not ready, as in Kubernetes): look until one has it.
            metric = (status(api.get(f"{HPAS}/busy").json()).get("currentMetrics") or [{}])[0]
            return int((metric.get("resource") or {}).get("current", {})
                       .get("averageUtilization") or 0)

        wait_for(lambda: replicas() == 2, timeout=60, what="scaled up to 2")
        assert wait_for(utilization, timeout=30, what="a cpu reading") > 50
        table = kubectl("get", "hpa", "busy")
        assert "Deployment/busy" in table and "cpu: " in table

        flag.unlink()
        wait_for(lambda: replicas() == 1, timeout=60, what="scaled back down to 1")

        def rescales() -> list[str]:
            events = api.get("/api/v1/namespaces/default/events", params={
                "fieldSelector": "involvedObject.name=busy,"
                                 "involvedObject.kind=HorizontalPodAutoscaler"}).json()
            return [e["message"] for e in events["items"] if e["reason"] == "SuccessfulRescale"]

        # Events are written a moment after the rescale (the recorder batches them).
        wait_for(lambda: len(rescales()) == 2, what="two SuccessfulRescale events")
        assert sorted(rescales()) == [
            "New size: 1; reason: All metrics below target",
            ("New size: 2; reason: cpu resource utilization (percentage of request) above "
            "target")]
