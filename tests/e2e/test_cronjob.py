"""CronJob on a real cluster, with the real kubectl: `kubectl create cronjob`
(a protobuf body), a real minute of `* * * * *` producing a Job that runs and
completes, `kubectl get cronjob`, and `kubectl create job --from=cronjob/...`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from corral.objects import status
from tests.cluster import Master, wait_for
from tests.conftest import AgentFactory
from tests.kubectl import Kubectl

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def owned_jobs(api: httpx.Client) -> list[dict[str, Any]]:
    return [j for j in api.get(JOBS).json()["items"]
            if any(r.get("kind") == "CronJob" and r.get("name") == "tick"
                   for r in j["metadata"].get("ownerReferences") or [])]


def completed(job: dict[str, Any]) -> bool:
    return any(c["type"] == "Complete" and c["status"] == "True"
               for c in (status(job)).get("conditions") or [])


def test_a_minute_of_cron(fresh_master: Master, agents: AgentFactory, tmp_path: Path) -> None:
    agents(fresh_master, "cron-a", node_ip="127.0.1.47")
    kubectl = Kubectl(fresh_master, tmp_path / "kubecache")
    kubectl("create", "cronjob", "tick", "--image=none", "--schedule=* * * * *",
            "--restart=Never", "--", "sh", "-c", "echo tock")
    with fresh_master.http() as api:
        cj = api.get("/apis/batch/v1/namespaces/default/cronjobs/tick").json()
        assert cj["spec"]["concurrencyPolicy"] == "Allow"  # defaulted
        assert cj["spec"]["successfulJobsHistoryLimit"] == 3

        job = wait_for(lambda: next(iter(owned_jobs(api)), None), timeout=90,
                       what="the first scheduled Job")
        scheduled = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        assert scheduled.endswith(":00Z")
        assert job["metadata"]["labels"]["batch.kubernetes.io/cronjob-name"] == "tick"
        wait_for(lambda: any(completed(j) for j in owned_jobs(api)), timeout=60,
                 what="the scheduled Job completes")
        status = wait_for(lambda: (api.get("/apis/batch/v1/namespaces/default/cronjobs/tick")
                                   .json().get("status") or {}).get("lastSuccessfulTime")
                          and api.get("/apis/batch/v1/namespaces/default/cronjobs/tick")
                          .json()["status"], what="lastSuccessfulTime")
        assert status["lastScheduleTime"] == scheduled

    table = kubectl("get", "cronjob", "tick").splitlines()
    assert table[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE",
                                "LAST", "SCHEDULE", "AGE"]
    assert table[1].split()[:7] == ["tick", "*", "*", "*", "*", "*", "<none>"]

    kubectl("create", "job", "by-hand", "--from=cronjob/tick")
    with fresh_master.http() as api:
        manual = api.get(f"{JOBS}/by-hand").json()
        assert manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
        # Seen by the controller, and not among the CronJob's active Jobs (Kubernetes'
        # way: a Job made by hand holds back no Forbid schedule).
        wait_for(lambda: any(e["reason"] == "UnexpectedJob" and "by-hand" in e["message"]
                             for e in api.get("/api/v1/namespaces/default/events").json()[
                                 "items"]), timeout=30, what="an UnexpectedJob event")
        active = (api.get("/apis/batch/v1/namespaces/default/cronjobs/tick").json()
                  .get("status") or {}).get("active") or []
        assert "by-hand" not in [ref["name"] for ref in active]
        wait_for(lambda: completed(api.get(f"{JOBS}/by-hand").json()), timeout=60,
                 what="the manual Job completes")
        refused = api.post("/apis/batch/v1/namespaces/default/cronjobs", json={
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "bad"},
            "spec": {"schedule": "every minute", "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "c", "image": "x"}]}}}}}})
        assert refused.status_code == 422
        cause = refused.json()["details"]["causes"][0]
        assert cause["field"] == "spec.schedule" and "expected exactly 5 fields" in cause["message"]
