"""Controllers end to end: a real master, three real agents, real processes.

    deployments  scale 3 → 5 → 1 with kubectl; rolling update with maxUnavailable 0
                 never drops below 3 available; kubectl rollout status/history/undo
    failure      kill -9 one agent under 6 replicas: replacements Running on the
                 others; the agent restarted later runs none of its old pods
    jobs         200 completions at parallelism 20; a failing Job stops at
                 backoffLimit; an Indexed Job runs each index exactly once
    endpoints    a Service's Endpoints list the pods' real host ports
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster import Agent, Master, node_home, start_agents
from tests.integration.controllers.helpers import (
    APPS,
    CORE,
    create,
    deployment,
    get,
    items,
    merge_patch,
    namespace,
    pods,
    template,
)
from tests.kubectl import kubectl_binary
from tests.manifests import job
from tests.poll import wait_for

NS = "e2e"
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"


@pytest.fixture(scope="module")
def agents(master: Master, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Agent]]:
    base = tmp_path_factory.mktemp("agents")
    started = [Agent(master, f"node-{i}", base / f"node-{i}", f"127.0.1.{40 + i}",
                     ["--cpus", "4"]) for i in range(3)]
    try:
        yield start_agents(started)
    finally:
        for agent in started:
            agent.cleanup()


@pytest.fixture(scope="module")
def http(master: Master, agents: list[Agent]) -> Iterator[httpx.Client]:
    with master.http() as client:
        namespace(client, NS)
        yield client


def running(http: httpx.Client, app: str) -> list[dict]:  # type: ignore[type-arg]
    return [p for p in pods(http, NS, app) if p.get("status", {}).get("phase") == "Running"]


def available(http: httpx.Client, name: str) -> int:
    d = get(http, f"{APPS}/{NS}/deployments/{name}") or {}
    return int(d.get("status", {}).get("availableReplicas") or 0)


def kubectl(master: Master, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig), "KUBECACHEDIR": str(tmp)}
    return subprocess.run([kubectl_binary(), "-n", NS, *args], check=False, capture_output=True, text=True,
                          timeout=120, env=env)


def test_scale_rolling_update_and_kubectl_rollout(http: httpx.Client, master: Master,
                                                  tmp_path: Path) -> None:
    create(http, f"{APPS}/{NS}/deployments", deployment("web", 3, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
    status = kubectl(master, tmp_path, "rollout", "status", "deployment/web", "--timeout=90s")
    assert status.returncode == 0, status.stderr
    assert 'deployment "web" successfully rolled out' in status.stdout
    for replicas in (5, 1, 3):
        scaled = kubectl(master, tmp_path, "scale", "deployment/web", f"--replicas={replicas}")
        assert scaled.returncode == 0, scaled.stderr
        wait_for(lambda r=replicas: len(running(http, "web")) == r  # type: ignore[misc]
                 and len(pods(http, NS, "web")) == r, timeout=60, what=f"{replicas} running")
    wait_for(lambda: available(http, "web") == 3, timeout=30, what="3 available")
    lowest = [3]
    done = threading.Event()

    def watch_availability() -> None:
        with master.http() as watcher:
            while not done.is_set():
                lowest[0] = min(lowest[0], available(watcher, "web"))
                time.sleep(0.05)

    watcher = threading.Thread(target=watch_availability)
    watcher.start()
    try:
        merge_patch(http, f"{APPS}/{NS}/deployments/web",
                    {"spec": {"template": template("web", "v2")}})
        status = kubectl(master, tmp_path, "rollout", "status", "deployment/web",
                         "--timeout=120s")
    finally:
        done.set()
        watcher.join()
    assert status.returncode == 0, status.stderr
    assert lowest[0] >= 3, f"availability dropped to {lowest[0]} during the rollout"
    history = kubectl(master, tmp_path, "rollout", "history", "deployment/web")
    assert history.returncode == 0, history.stderr
    assert [line.split()[0] for line in history.stdout.splitlines()[2:4]] == ["1", "2"]
    undo = kubectl(master, tmp_path, "rollout", "undo", "deployment/web")
    assert undo.returncode == 0, undo.stderr
    wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in running(http, "web")}
             == {"v1"} and len(running(http, "web")) == 3, timeout=90, what="v1 back")
    status = kubectl(master, tmp_path, "rollout", "status", "deployment/web", "--timeout=90s")
    assert status.returncode == 0, status.stderr


def test_endpoints_list_real_host_ports(http: httpx.Client) -> None:
    d = deployment("srv", 2)
    d["spec"]["template"]["spec"]["containers"][0].update(
        command=["python3", "-m", "http.server", "$(PORT)", "--bind", "0.0.0.0"],
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"tcpSocket": {"port": "http"}, "periodSeconds": 1})
    create(http, f"{APPS}/{NS}/deployments", d)
    create(http, f"{CORE}/{NS}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "srv"},
        "spec": {"selector": {"app": "srv"}, "ports": [{"name": "web", "port": 80,
                                                         "targetPort": "http"}]}})
    endpoints = wait_for(lambda: (e := get(http, f"{CORE}/{NS}/endpoints/srv")) and sum(
        len(s.get("addresses") or []) for s in e.get("subsets") or []) == 2 and e,
        timeout=60, what="2 ready addresses")
    served = {(a["ip"], s["ports"][0]["port"]) for s in endpoints["subsets"]
              for a in s["addresses"]}
    mapped = {(m["hostIP"], m["hostPort"]) for p in running(http, "srv")
              for m in p["status"]["portMappings"]}
    assert served == mapped
    for ip, port in served:
        assert httpx.get(f"http://{ip}:{port}/", timeout=5).status_code == 200


def test_killed_agent_pods_replaced_and_no_duplicates_after_restart(
        http: httpx.Client, agents: list[Agent]) -> None:
    create(http, f"{APPS}/{NS}/deployments", deployment("spread", 6))
    placed = wait_for(lambda: len(r := running(http, "spread")) == 6 and r, timeout=60,
                      what="6 running")
    by_node = Counter(p["spec"]["nodeName"] for p in placed)
    victim = next(a for a in agents if by_node[a.name])
    victim.kill()
    started = time.monotonic()
    wait_for(lambda: len(r := running(http, "spread")) == 6
             and all(p["spec"]["nodeName"] != victim.name for p in r) and r,
             timeout=45, what="6 running elsewhere")
    recovery = time.monotonic() - started
    print(f"recovery after kill -9: {recovery:.1f}s")
    victim.start()
    from tests.integration.agent_api.conftest import instances

    # The restarted agent syncs with the API and stops what the API no longer has.
    wait_for(lambda: not [s for s in instances(victim) if s.running], timeout=30,
             what="the restarted agent to stop pods the API no longer has")
    # And it finishes deleting the pods it ran, which the API holds as terminating
    # until their node confirms: then only the six replacements are left.
    def only_replacements() -> bool:
        left = {p["metadata"]["name"] for p in pods(http, NS, "spread", active_only=False)}
        return len(left) == 6 and left == {p["metadata"]["name"]
                                           for p in running(http, "spread")}

    wait_for(only_replacements, timeout=30, what="only the six replacements left")


def wait_job(http: httpx.Client, name: str, timeout: float) -> dict:  # type: ignore[type-arg]
    def finished() -> dict | None:  # type: ignore[type-arg]
        job = get(http, f"{JOBS}/{name}") or {}
        done = [c for c in job.get("status", {}).get("conditions", [])
                if c["type"] in ("Complete", "Failed") and c["status"] == "True"]
        return job if done else None

    return dict(wait_for(finished, timeout=timeout, what=f"job {name} finished"))


def test_job_of_200_completions(http: httpx.Client) -> None:
    create(http, JOBS, job("many", ["true"], completions=200, parallelism=20))
    done = wait_job(http, "many", timeout=240)
    status = done["status"]
    assert [c["type"] for c in status["conditions"] if c["status"] == "True"] == ["Complete"]
    assert status["succeeded"] == 200
    assert status.get("failed", 0) == 0
    assert status["completionTime"] and status["startTime"]


def test_failing_job_stops_at_backoff_limit(http: httpx.Client) -> None:
    create(http, JOBS, job("fails", ["false"], completions=1, backoffLimit=2))
    done = wait_job(http, "fails", timeout=90)
    cond = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "BackoffLimitExceeded"
    assert done["status"]["failed"] == 3


def test_pod_failure_policy_ignores_and_fails_the_job(http: httpx.Client,
                                                      tmp_path: Path) -> None:
    """The first pod exits 3 (Ignore: not counted, so backoffLimit 0 does not fail
    the Job) and its replacement exits 42 (FailJob: the Job fails at once)."""
    shared = node_home(tmp_path / "shared")  # where the pods' user can reach
    shared.chmod(0o777)  # and leave its mark
    mark = shared / "tried"
    policy = {"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    script = f"test -e {mark} && exit 42; touch {mark}; exit 3"
    create(http, JOBS, job("pfp", ["sh", "-c", script], backoffLimit=0, podFailurePolicy=policy))
    done = wait_job(http, "pfp", timeout=90)
    cond = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert cond["reason"] == "PodFailurePolicy"
    assert "failed with exit code 42 matching FailJob rule at index 1" in cond["message"]
    assert done["status"]["failed"] == 1
    assert any(c["type"] == "FailureTarget" for c in done["status"]["conditions"])


def test_indexed_job_runs_each_index_once(http: httpx.Client) -> None:
    name = f"idx-{uuid.uuid4().hex[:4]}"
    create(http, JOBS, job(name, ["sh", "-c", "test -n \"$JOB_COMPLETION_INDEX\""],
                           completions=5, parallelism=3, completionMode="Indexed"))
    done = wait_job(http, name, timeout=90)
    assert done["status"]["completedIndexes"] == "0-4"
    assert done["status"]["succeeded"] == 5
    selector = f"batch.kubernetes.io/job-name={name}"
    succeeded = [p for p in items(http, f"{CORE}/{NS}/pods", selector)
                 if p["status"].get("phase") == "Succeeded"]
    indexes = Counter(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                      for p in succeeded)
    assert indexes == Counter({str(i): 1 for i in range(5)})


def _runs(shared: Path, index: int) -> int:
    """How many times index ``index`` ran (its pods append a line each)."""
    path = shared / f"runs-{index}"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _counting(shared: Path, then: str) -> list[str]:
    """A pod command that notes its run in the shared directory, then does ``then``."""
    return ["sh", "-c", f'echo run >> {shared}/runs-$JOB_COMPLETION_INDEX; {then}']


def _true_conditions(job_obj: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["type"]: c["reason"] for c in job_obj["status"].get("conditions", [])
            if c["status"] == "True"}


def test_backoff_limit_per_index_retries_only_the_failing_index(
        http: httpx.Client, master: Master, tmp_path: Path) -> None:
    """Index 1 always fails: with backoffLimitPerIndex 1 it runs twice, then is a
    failed index; the others run once and complete; the Job fails FailedIndexes."""
    shared = node_home(tmp_path / "shared")
    shared.chmod(0o777)
    command = _counting(shared, 'test "$JOB_COMPLETION_INDEX" != 1')
    create(http, JOBS, job("per-index", command, completions=4, parallelism=4,
                           completionMode="Indexed", backoffLimitPerIndex=1))
    done = wait_job(http, "per-index", timeout=90)
    status = done["status"]
    assert _true_conditions(done) == {"FailureTarget": "FailedIndexes", "Failed": "FailedIndexes"}
    failed_cond = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed_cond["message"] == "Job has failed indexes"
    assert (status["failedIndexes"], status["completedIndexes"]) == ("1", "0,2-3")
    assert (status["succeeded"], status["failed"]) == (3, 2)
    assert done["spec"]["backoffLimit"] == 2**31 - 1  # defaulted: only the index limit counts
    assert [_runs(shared, i) for i in range(4)] == [1, 2, 1, 1]
    selector = "batch.kubernetes.io/job-name=per-index"
    of_index_1 = [p["metadata"]["annotations"] for p in items(http, f"{CORE}/{NS}/pods", selector)
                  if p["metadata"]["annotations"][
                      "batch.kubernetes.io/job-completion-index"] == "1"]
    assert sorted(a["batch.kubernetes.io/job-index-failure-count"] for a in of_index_1) == \
        ["0", "1"]
    got = kubectl(master, tmp_path, "get", "job", "per-index", "--no-headers")
    assert got.returncode == 0, got.stderr
    assert got.stdout.split()[1:3] == ["Failed", "3/4"], got.stdout
    described = kubectl(master, tmp_path, "describe", "job", "per-index")
    assert described.returncode == 0, described.stderr
    for line in ("Completion Mode:    Indexed", "Completed Indexes:  0,2-3",
                 "0 Active (0 Ready) / 3 Succeeded / 2 Failed",
                 "FailedIndexes     ", "Job has failed indexes"):
        assert line in described.stdout, described.stdout


def test_max_failed_indexes_fails_the_job_at_once(http: httpx.Client, tmp_path: Path) -> None:
    """maxFailedIndexes 0: index 0's one failure fails the Job; index 1's running
    pod is terminated and index 2 never starts."""
    shared = node_home(tmp_path / "shared")
    shared.chmod(0o777)
    command = _counting(shared, 'test "$JOB_COMPLETION_INDEX" != 0 && exec sleep 60; exit 1')
    create(http, JOBS, job("max-failed", command, completions=3, parallelism=2,
                           completionMode="Indexed", backoffLimitPerIndex=0,
                           maxFailedIndexes=0))
    done = wait_job(http, "max-failed", timeout=90)
    assert _true_conditions(done) == {"FailureTarget": "MaxFailedIndexesExceeded",
                                      "Failed": "MaxFailedIndexesExceeded"}
    assert done["status"]["failedIndexes"] == "0"
    selector = "batch.kubernetes.io/job-name=max-failed"
    wait_for(lambda: not [p for p in items(http, f"{CORE}/{NS}/pods", selector)
                          if p["status"].get("phase") in ("Pending", "Running")
                          and not p["metadata"].get("deletionTimestamp")],
             timeout=30, what="no pod of the failed Job left running")
    indexes = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
               for p in items(http, f"{CORE}/{NS}/pods", selector)}
    assert "2" not in indexes
    assert _runs(shared, 0) == 1 and _runs(shared, 2) == 0


def test_fail_index_rule_fails_the_index_after_one_run(http: httpx.Client,
                                                       tmp_path: Path) -> None:
    """A FailIndex rule on exit code 42 fails index 0 at its first failure, though
    backoffLimitPerIndex would allow 3 retries. Index 1 exits 3 on its first run
    (an Ignore rule: its replacement counts it as an ignored failure), then
    completes."""
    shared = node_home(tmp_path / "shared")
    shared.chmod(0o777)
    command = _counting(shared, 'test "$JOB_COMPLETION_INDEX" != 0 || exit 42; '
                                f'test "$(wc -l < {shared}/runs-1)" -ge 2 || exit 3')
    policy = {"rules": [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}
    create(http, JOBS, job("fail-index", command, completions=2, parallelism=2,
                           completionMode="Indexed", backoffLimitPerIndex=3,
                           podFailurePolicy=policy))
    done = wait_job(http, "fail-index", timeout=90)
    assert _true_conditions(done)["Failed"] == "FailedIndexes"
    assert (done["status"]["failedIndexes"], done["status"]["completedIndexes"]) == ("0", "1")
    assert [_runs(shared, 0), _runs(shared, 1)] == [1, 2]
    notes = [p["metadata"]["annotations"] for p in items(
        http, f"{CORE}/{NS}/pods", "batch.kubernetes.io/job-name=fail-index")
        if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1"]
    assert sorted((a["batch.kubernetes.io/job-index-failure-count"],
                   a.get("batch.kubernetes.io/job-index-ignored-failure-count", "-"))
                  for a in notes) == [("0", "-"), ("0", "1")]
