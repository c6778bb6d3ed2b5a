"""ReplicaSet, Deployment and Job controllers at the API level, against a real
`corral master` with no node: pods are created, owned, adopted, released and
deleted; rollouts make ReplicaSets with revisions; undo, pause, deadlines."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.cluster import Master
from tests.integration.controllers.helpers import (
    APPS,
    CORE,
    corral,
    create,
    deployment,
    get,
    items,
    merge_patch,
    namespace,
    owned_by,
    pods,
    replica_set,
    template,
)
from tests.poll import wait_for

NS = "wl"


@pytest.fixture(scope="module")
def http(master: Master) -> Iterator[httpx.Client]:
    with master.http() as client:
        namespace(client, NS)
        yield client


def rs_of(http: httpx.Client, name: str) -> list[dict]:  # type: ignore[type-arg]
    d = get(http, f"{APPS}/{NS}/deployments/{name}")
    assert d is not None
    return sorted((rs for rs in items(http, f"{APPS}/{NS}/replicasets")
                   if owned_by(rs, d["metadata"]["uid"])),
                  key=lambda rs: int(rs["metadata"]["annotations"][
                      "deployment.kubernetes.io/revision"]))


def revisions(http: httpx.Client, name: str) -> list[tuple[int, str]]:
    return [(int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
             rs["spec"]["template"]["spec"]["containers"][0]["image"]) for rs in rs_of(http, name)]


def test_replicaset_creates_scales_and_reports(http: httpx.Client) -> None:
    rs = create(http, f"{APPS}/{NS}/replicasets", replica_set("rs-a", 3))
    uid = rs["metadata"]["uid"]
    found = wait_for(lambda: len(p := pods(http, NS, "rs-a")) == 3 and p, what="3 pods")
    assert all(owned_by(p, uid) for p in found)
    assert all(p["metadata"]["generateName"] == "rs-a-" for p in found)
    wait_for(lambda: (get(http, f"{APPS}/{NS}/replicasets/rs-a") or {}).get(
        "status", {}).get("replicas") == 3, what="status.replicas 3")
    merge_patch(http, f"{APPS}/{NS}/replicasets/rs-a/scale", {"spec": {"replicas": 1}})
    wait_for(lambda: len(pods(http, NS, "rs-a")) == 1, what="scaled to 1")
    status = wait_for(lambda: (s := (get(http, f"{APPS}/{NS}/replicasets/rs-a") or {}).get(
        "status", {})).get("replicas") == 1 and s, what="status 1")
    assert status["observedGeneration"] >= 2
    events = items(http, f"{CORE}/{NS}/events")
    reasons = {(e["reason"], e["source"]["component"]) for e in events
               if e["involvedObject"].get("name") == "rs-a"}
    assert ("SuccessfulCreate", "replicaset-controller") in reasons
    assert ("SuccessfulDelete", "replicaset-controller") in reasons


def test_replicaset_adopts_orphans_and_releases_strays(http: httpx.Client) -> None:
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan-b",
                                                               "labels": {"app": "rs-b"}},
              "spec": template("rs-b")["spec"]}
    create(http, f"{CORE}/{NS}/pods", orphan)
    rs = create(http, f"{APPS}/{NS}/replicasets", replica_set("rs-b", 2))
    uid = rs["metadata"]["uid"]
    adopted = wait_for(lambda: owned_by(p := get(http, f"{CORE}/{NS}/pods/orphan-b") or {
        "metadata": {}}, uid) and p, what="orphan adopted")
    assert adopted["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    wait_for(lambda: len(pods(http, NS, "rs-b")) == 2, what="2 pods (one adopted)")
    merge_patch(http, f"{CORE}/{NS}/pods/orphan-b", {"metadata": {"labels": {"app": "other"}}})
    released = wait_for(lambda: not (p := get(http, f"{CORE}/{NS}/pods/orphan-b") or {
        "metadata": {"ownerReferences": [1]}})["metadata"].get("ownerReferences") and p,
        what="stray released")
    assert released["metadata"]["labels"] == {"app": "other"}
    wait_for(lambda: len(pods(http, NS, "rs-b")) == 2, what="a replacement for the stray")


def test_deployment_rolls_through_replicasets_with_revisions(http: httpx.Client,
                                                               master: Master) -> None:
    create(http, f"{APPS}/{NS}/deployments", deployment("dep-a", 2, strategy={
        "type": "Recreate"}))
    wait_for(lambda: revisions(http, "dep-a") == [(1, "v1")], what="revision 1")
    rs1 = rs_of(http, "dep-a")[0]
    assert rs1["metadata"]["name"].startswith("dep-a-")
    assert "pod-template-hash" in rs1["spec"]["selector"]["matchLabels"]
    wait_for(lambda: len(pods(http, NS, "dep-a")) == 2, what="2 pods")
    merge_patch(http, f"{APPS}/{NS}/deployments/dep-a", {"spec": {"template": template(
        "dep-a", "v2")}})
    wait_for(lambda: revisions(http, "dep-a") == [(1, "v1"), (2, "v2")], what="revision 2")
    # The Deployment's annotations are copied to its newest ReplicaSet, also when
    # set after the rollout began: the change-cause `rollout history` prints.
    merge_patch(http, f"{APPS}/{NS}/deployments/dep-a", {"metadata": {"annotations": {
        "kubernetes.io/change-cause": "image v2", "kubectl.kubernetes.io/last-applied-"
        "configuration": "{}"}}})
    rs2 = wait_for(lambda: (rs := rs_of(http, "dep-a")[-1])["metadata"]["annotations"].get(
        "kubernetes.io/change-cause") == "image v2" and rs, what="change-cause copied")
    assert "kubectl.kubernetes.io/last-applied-configuration" not in rs2["metadata"][
        "annotations"]
    wait_for(lambda: [p["spec"]["containers"][0]["image"] for p in pods(http, NS, "dep-a")]
             == ["v2", "v2"], what="Recreate: only v2 pods")
    history = corral(master, "rollout", "history", "deployment/dep-a", "-n", NS)
    assert history.returncode == 0, history.stderr
    assert history.stdout.split("\n")[1:4] == ["REVISION  CHANGE-CAUSE", "1         <none>",
                                               "2         image v2"]
    undo = corral(master, "rollout", "undo", "deployment/dep-a", "-n", NS)
    assert undo.returncode == 0 and "rolled back" in undo.stdout, undo.stderr
    # The revision-1 ReplicaSet is reused and becomes revision 3; no new RS.
    wait_for(lambda: revisions(http, "dep-a") == [(2, "v2"), (3, "v1")], what="revision 3")
    reused = rs_of(http, "dep-a")[-1]
    assert reused["metadata"]["uid"] == rs1["metadata"]["uid"]
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    wait_for(lambda: [p["spec"]["containers"][0]["image"] for p in pods(http, NS, "dep-a")]
             == ["v1", "v1"], what="v1 pods back")


def test_pause_holds_template_changes_and_resume_rolls_them(http: httpx.Client,
                                                            master: Master) -> None:
    create(http, f"{APPS}/{NS}/deployments", deployment("dep-p", 1))
    wait_for(lambda: len(rs_of(http, "dep-p")) == 1, what="first RS")
    assert corral(master, "rollout", "pause", "deployment/dep-p", "-n", NS).returncode == 0
    again = corral(master, "rollout", "pause", "deployment/dep-p", "-n", NS)
    assert again.returncode == 1 and "already paused" in again.stderr
    merge_patch(http, f"{APPS}/{NS}/deployments/dep-p", {"spec": {"template": template(
        "dep-p", "v2")}})
    wait_for(lambda: any(c["reason"] == "DeploymentPaused" for c in (get(
        http, f"{APPS}/{NS}/deployments/dep-p") or {}).get("status", {}).get(
        "conditions", [])), what="DeploymentPaused")
    assert len(rs_of(http, "dep-p")) == 1
    assert corral(master, "rollout", "resume", "deployment/dep-p", "-n", NS).returncode == 0
    wait_for(lambda: revisions(http, "dep-p") == [(1, "v1"), (2, "v2")], what="rolled after resume")


def test_progress_deadline_exceeded(http: httpx.Client, master: Master) -> None:
    # No node runs the pods, so they never become available.
    create(http, f"{APPS}/{NS}/deployments", deployment("dep-s", 1,
                                                        progressDeadlineSeconds=2))
    cond = wait_for(lambda: next((c for c in (get(http, f"{APPS}/{NS}/deployments/dep-s") or {})
                                  .get("status", {}).get("conditions", [])
                                  if c["type"] == "Progressing"
                                  and c["reason"] == "ProgressDeadlineExceeded"), None),
                    timeout=20, what="ProgressDeadlineExceeded")
    assert cond["status"] == "False"
    assert cond["message"].endswith("has timed out progressing.")
    status = corral(master, "rollout", "status", "deployment/dep-s", "-n", NS)
    assert status.returncode == 1
    assert 'deployment "dep-s" exceeded its progress deadline' in status.stderr


def test_scale_cli_and_rolling_replicasets(http: httpx.Client, master: Master) -> None:
    create(http, f"{APPS}/{NS}/deployments", deployment("dep-r", 2))
    wait_for(lambda: len(pods(http, NS, "dep-r")) == 2, what="2 pods")
    out = corral(master, "scale", "deployment/dep-r", "--replicas", "4", "-n", NS)
    assert out.returncode == 0 and out.stdout.strip() == "deployment.apps/dep-r scaled"
    wait_for(lambda: len(pods(http, NS, "dep-r")) == 4, what="4 pods")
    rs = rs_of(http, "dep-r")
    assert [r["spec"]["replicas"] for r in rs] == [4]
    assert rs[0]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "4"


def test_indexed_job_pods_and_suspend(http: httpx.Client) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "idx"},
           "spec": {"completions": 4, "parallelism": 2, "completionMode": "Indexed",
                    "template": {"spec": {"restartPolicy": "Never", "containers": [
                        {"name": "main", "image": "x", "command": ["true"]}]}}}}
    created = create(http, f"/apis/batch/v1/namespaces/{NS}/jobs", job)
    selector = f"batch.kubernetes.io/controller-uid={created['metadata']['uid']}"
    found = wait_for(lambda: len(p := items(http, f"{CORE}/{NS}/pods", selector)) == 2 and p,
                     what="2 job pods")
    indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                     for p in found)
    assert indexes == ["0", "1"]
    for p in found:
        assert "batch.kubernetes.io/job-tracking" in p["metadata"]["finalizers"]
        env = {e["name"]: e.get("value") for e in p["spec"]["containers"][0]["env"]}
        assert env["JOB_COMPLETION_INDEX"] == \
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
    status = wait_for(lambda: (get(http, f"/apis/batch/v1/namespaces/{NS}/jobs/idx") or {}).get(
        "status", {}).get("active") == 2, what="active 2")
    assert status
    merge_patch(http, f"/apis/batch/v1/namespaces/{NS}/jobs/idx", {"spec": {"suspend": True}})
    wait_for(lambda: not items(http, f"{CORE}/{NS}/pods", selector), what="pods gone")
    job_now = wait_for(lambda: (j := get(http, f"/apis/batch/v1/namespaces/{NS}/jobs/idx"))
                       and any(c["type"] == "Suspended" and c["status"] == "True"
                               for c in j["status"].get("conditions", [])) and j,
                       what="Suspended")
    assert job_now["status"]["active"] == 0
