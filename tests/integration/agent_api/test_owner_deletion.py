"""Deleting a Deployment whose pods run on a real agent: the garbage collector's
deletecollection by owner marks the running pods (they have a grace period), the
agent stops each with SIGTERM, and each pod goes once its process has ended."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests import manifests
from tests.cluster import Agent
from tests.integration.agent_api.conftest import phase
from tests.poll import wait_for

APP = "graceful-owner"
# Writes its goodbye on SIGTERM, so the test sees each pod was stopped gracefully.
GOODBYE = ('trap \'echo TERM > "$MARKS/$HOSTNAME"; exit 0\' TERM; '
           "while :; do sleep 0.2; done")


def _pods(http: httpx.Client) -> list[dict]:  # type: ignore[type-arg]
    r = http.get("/api/v1/namespaces/default/pods", params={"labelSelector": f"app={APP}"})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_a_deleted_deployments_running_pods_terminate_gracefully(
        http: httpx.Client, node: Agent, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    # Root: the marks are under the test's own temp dir, whose 0700 parents the
    # node's pod user (corral-pod) cannot pass.
    template = manifests.pod_template(
        {"app": APP}, containers=[manifests.container(
            ["sh", "-c", GOODBYE], env=[{"name": "MARKS", "value": str(marks)}],
            securityContext={"runAsUser": 0})],
        nodeName=node.name, terminationGracePeriodSeconds=10)
    r = http.post("/apis/apps/v1/namespaces/default/deployments",
                  json=manifests.deployment(APP, 3, template=template))
    assert r.status_code == 201, r.text
    wait_for(lambda: [phase(p) for p in _pods(http)] == ["Running"] * 3, timeout=60,
             what="three pods running on the agent")
    names = sorted(p["metadata"]["name"] for p in _pods(http))
    r = http.request("DELETE", f"/apis/apps/v1/namespaces/default/deployments/{APP}",
                     json={"propagationPolicy": "Background"})
    assert r.status_code == 200, r.text
    wait_for(lambda: not _pods(http), timeout=90, what="every pod stopped and deleted")
    assert sorted(p.name for p in marks.iterdir()) == names
    assert all(p.read_text().strip() == "TERM" for p in marks.iterdir())
