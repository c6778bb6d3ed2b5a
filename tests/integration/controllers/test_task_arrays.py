"""Jobs run as tasks (corral.dev/run-as: tasks) on real agents: every index runs
exactly once, failures are retried within limits and reported the Kubernetes way,
a dead node's unfinished indices finish elsewhere without re-running completed
ones, preemption and suspend give indices back, one index's log, and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.agent.runtime.executors import ExecutorRuntime
from corral.indexset import IndexSet
from corral.objects import Obj, status
from tests.cluster import Agent, Master
from tests.integration.controllers.helpers import corral, merge_patch
from tests.poll import wait_for

JOBS = "/apis/batch/v1/namespaces/default/jobs"
ALLOCS = "/apis/corral.dev/v1/namespaces/default/allocs"


def array_job(name: str, completions: int, command: str, *, parallelism: int = 8,
              **spec: Any) -> Obj:
    # Root, said explicitly: the tasks write into pytest's temp dirs, which are
    # root's alone (a template naming no user runs as the node's pod user).
    template_spec = {"securityContext": {"runAsUser": 0}, **spec.pop("template_spec", {})}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "annotations": {"corral.dev/run-as": "tasks"}},
            "spec": {"completionMode": "Indexed", "completions": completions,
                     "parallelism": parallelism, **spec,
                     "template": {"spec": {"restartPolicy": "Never",
                                           "terminationGracePeriodSeconds": 2,
                                           **template_spec,
                                           "containers": [{"name": "task", "image": "none",
                                                           "command": ["sh", "-c", command]}]}}}}


def create(http: httpx.Client, job: Obj) -> None:
    r = http.post(JOBS, json=job)
    assert r.status_code == 201, r.text


def job_status(http: httpx.Client, name: str) -> Obj:
    return dict(status(http.get(f"{JOBS}/{name}").json()))


def condition(http: httpx.Client, name: str, kind: str) -> Obj | None:
    return next((c for c in job_status(http, name).get("conditions") or ()
                 if c["type"] == kind and c["status"] == "True"), None)


def allocs_of(http: httpx.Client, job: str) -> list[Obj]:
    r = http.get(ALLOCS, params={"labelSelector": f"batch.kubernetes.io/job-name={job}"})
    return list(r.json()["items"])


def ran(out: Path) -> list[int]:
    return sorted(int(line) for line in out.read_text().split()) if out.exists() else []


@pytest.fixture(scope="module")
def pair(master: Master, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Agent]]:
    """Two agents for the module's tests that do not kill one."""
    base = tmp_path_factory.mktemp("arrays")
    agents = [Agent(master, f"arr-{i}-{uuid.uuid4().hex[:4]}", base / f"a{i}", f"127.0.1.{40 + i}",
                    ["--cpus", "4"]) for i in range(2)]
    try:
        yield [a.start() for a in agents]
    finally:
        for agent in agents:
            agent.cleanup()


def kubectl(master: Master, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig),
           "KUBECACHEDIR": str(tmp_path / "kcache")}
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True,
                          timeout=180, check=False)


def test_two_thousand_tasks_each_index_exactly_once(master: Master, pair: list[Agent],
                                                    tmp_path: Path) -> None:
    out = tmp_path / "ran"
    with master.http() as http:
        create(http, array_job("two-k", 2000, f'echo "$JOB_COMPLETION_INDEX" >> {out}; '
                               '[ "$JOB_COMPLETION_INDEX" = 17 ] && echo "index seventeen"; '
                               'true', parallelism=16))
        waited = kubectl(master, tmp_path, "wait", "--for=condition=complete", "job/two-k",
                         "--timeout=150s")
        assert waited.returncode == 0, waited.stderr
        assert ran(out) == list(range(2000))  # no duplicates, no gaps
        st = job_status(http, "two-k")
        assert (st["succeeded"], st["failed"], st["completedIndexes"]) == (2000, 0, "0-1999")
        assert st["active"] == 0
        # Each Alloc goes once its agent has stopped its executor and written the
        # last status: slow on a loaded machine, however quick the tasks were.
        wait_for(lambda: allocs_of(http, "two-k") == [], 90, "the Allocs removed")
        wait_for(lambda: not (job_status(http, "two-k").get("uncountedTerminatedPods")
                              or {}).get("failed"), 60, "every removed Alloc counted")
    table = kubectl(master, tmp_path, "get", "job", "two-k").stdout.split("\n")[1].split()
    assert table[:3] == ["two-k", "Complete", "2000/2000"]


def test_logs_of_one_index(master: Master, pair: list[Agent], tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with master.http() as http:
        create(http, array_job("logged", 40, f'echo "hello from $JOB_COMPLETION_INDEX"; '
                               f'[ "$JOB_COMPLETION_INDEX" != 39 ] || '
                               f'while [ ! -e {gate} ]; do sleep 0.05; done', parallelism=4))
        wait_for(lambda: len(job_status(http, "logged").get("completedIndexes") or "") > 0
                 and job_status(http, "logged").get("succeeded", 0) >= 39, 60, "39 done")
        got = corral(master, "logs", "job/logged", "--index", "17")
        assert got.returncode == 0, got.stderr
        assert got.stdout == "hello from 17\n"
        follow = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "logs", "job/logged",
                                   "--index", "39", "-f", "--kubeconfig", str(master.kubeconfig)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert follow.stdout is not None
            assert follow.stdout.readline() == "hello from 39\n"
            gate.write_text("open")
            assert follow.wait(60) == 0  # the follow ends with the task
        finally:
            if follow.poll() is None:
                follow.kill()
                follow.wait()


def test_failing_indexes_are_retried_and_reported(master: Master, pair: list[Agent],
                                                  tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    # Index 5 fails once then succeeds; indexes 3 and 10 always fail.
    script = (f'i=$JOB_COMPLETION_INDEX; if [ $i = 5 ] && [ ! -e {marks}/5 ]; then '
              f'touch {marks}/5; exit 2; fi; [ $i != 3 ] && [ $i != 10 ] || exit 7')
    with master.http() as http:
        create(http, array_job("flaky", 12, script, parallelism=4, backoffLimitPerIndex=1,
                               backoffLimit=100))
        failed = wait_for(lambda: condition(http, "flaky", "Failed"), 90, "the Job failed")
        assert failed["reason"] == "FailedIndexes"
        st = job_status(http, "flaky")
        assert st["failedIndexes"] == "3,10"
        assert st["completedIndexes"] == "0-2,4-9,11"
        assert st["succeeded"] == 10 and st["failed"] == 5  # 3 and 10 twice, 5 once


def test_backoff_limit_fails_the_job(master: Master, pair: list[Agent]) -> None:
    with master.http() as http:
        create(http, array_job("hopeless", 50, "exit 1", parallelism=2, backoffLimit=3))
        failed = wait_for(lambda: condition(http, "hopeless", "Failed"), 60, "Failed")
        assert failed["reason"] == "BackoffLimitExceeded"
        assert job_status(http, "hopeless")["failed"] > 3
        wait_for(lambda: allocs_of(http, "hopeless") == [], 30, "the Allocs removed")


def test_suspend_and_resume(master: Master, pair: list[Agent], tmp_path: Path) -> None:
    out = tmp_path / "ran"
    with master.http() as http:
        create(http, array_job("pausable", 200, f'echo $JOB_COMPLETION_INDEX >> {out}; '
                               'sleep 0.1', parallelism=4))
        wait_for(lambda: len(ran(out)) >= 20, 60, "some tasks run")
        merge_patch(http, f"{JOBS}/pausable", {"spec": {"suspend": True}})
        wait_for(lambda: condition(http, "pausable", "Suspended"), 30, "Suspended")
        wait_for(lambda: allocs_of(http, "pausable") == [], 30, "its Allocs removed")
        # The Job's status follows its Allocs' removal in the controller's next pass.
        paused = wait_for(lambda: (st := job_status(http, "pausable"))["active"] == 0 and st,
                          30, "no task active")
        assert 0 < paused["succeeded"] < 200
        merge_patch(http, f"{JOBS}/pausable", {"spec": {"suspend": False}})
        wait_for(lambda: condition(http, "pausable", "Complete"), 90, "Complete")
        counts = ran(out)
        # Every index ran; only tasks cut short by the suspension may have run twice.
        assert sorted(set(counts)) == list(range(200)) and len(counts) - 200 <= 8


def test_an_alloc_whose_executor_is_lost_is_replaced(master: Master, pair: list[Agent],
                                                     tmp_path: Path) -> None:
    """An executor that dies leaves its Alloc Failed (ExecutorLost) with work in
    its range: the Alloc goes and that work runs elsewhere, where the Job used to
    wait for it for ever."""
    out = tmp_path / "ran"
    with master.http() as http:
        create(http, array_job("orphaned", 80, f'echo $JOB_COMPLETION_INDEX >> {out}; '
                               'sleep 0.1', parallelism=4))
        wait_for(lambda: len(ran(out)) >= 8, 60, "some tasks run")
        killed = wait_for(lambda: next((pid for agent in pair
                                        for pid in executor_pids(agent)), None),
                          30, "a running executor")
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: condition(http, "orphaned", "Complete"), 60, "Complete")
        # Every index ran; those cut short with their executor may have run twice.
        assert sorted(set(ran(out))) == list(range(80))


def executor_pids(agent: Agent) -> list[int]:
    executors = ExecutorRuntime(agent.state_dir / "runtime", None)
    return [pid for pid in (executors.dir(uid).alive_pid() for uid in executors.known())
            if pid is not None]


def test_array_template_the_executor_cannot_honour_is_422(master: Master) -> None:
    bad = array_job("bad", 10, "true")
    pod = bad["spec"]["template"]["spec"]
    pod["containers"].append({"name": "second", "image": "none", "command": ["true"]})
    pod["initContainers"] = [{"name": "init", "image": "none", "command": ["true"]}]
    pod["volumes"] = [{"name": "v", "emptyDir": {}}]
    pod["containers"][0]["readinessProbe"] = {"exec": {"command": ["true"]}}
    bad["spec"]["completions"] = 10_000_000
    with master.http() as http:
        r = http.post(JOBS, json=bad)
    assert r.status_code == 422
    fields = {c["field"] for c in r.json()["details"]["causes"]}
    assert fields == {"spec.template.spec.containers", "spec.template.spec.initContainers",
                      "spec.template.spec.volumes", "spec.completions",
                      "spec.template.spec.containers[0].readinessProbe"}


def _dead_machine(agent: Agent) -> None:
    """The node dies: its agent and every executor (with its tasks) at once."""
    runtime = agent.state_dir / "runtime"
    assert agent.proc is not None
    os.killpg(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait()
    agent.proc = None
    executors = ExecutorRuntime(runtime, None)
    for uid in executors.known():
        executors.kill(uid)


def test_a_dead_node_gives_back_only_unfinished_indexes(master: Master, agents: Any,
                                                        tmp_path: Path) -> None:
    doomed = agents(master, "arr-doomed", "--cpus", "2", node_ip="127.0.1.45")
    survivor = agents(master, "arr-survivor", "--cpus", "2", node_ip="127.0.1.46")
    out = tmp_path / "ran"
    # Each task records its index when it finishes, slowly enough that the kill
    # lands mid-array.
    script = f'sleep 0.2; echo "$JOB_COMPLETION_INDEX" >> {out}'
    with master.http() as http:
        job = array_job("survive", 120, script, parallelism=8)
        job["spec"]["template"]["spec"]["nodeSelector"] = {"arrays": "dead-node-test"}
        for name in (doomed.name, survivor.name):
            merge_patch(http, f"/api/v1/nodes/{name}",
                        {"metadata": {"labels": {"arrays": "dead-node-test"}}})
        create(http, job)

        def recorded_on_doomed() -> IndexSet:
            done = IndexSet()
            for alloc in allocs_of(http, "survive"):
                if alloc["spec"].get("nodeName") == doomed.name:
                    done.update(IndexSet.parse(status(alloc).get("completed")))
            return done

        wait_for(lambda: len(recorded_on_doomed()) >= 10, 60,
                 "completions recorded on the doomed node")
        _dead_machine(doomed)
        recorded = recorded_on_doomed()  # on record: these must never run again
        wait_for(lambda: condition(http, "survive", "Complete"), 120, "Complete elsewhere")
        assert job_status(http, "survive")["completedIndexes"] == "0-119"
    indexes = ran(out)
    assert sorted(set(indexes)) == list(range(120))
    assert all(indexes.count(i) == 1 for i in recorded)
    # The rest of the doomed node's indexes ran again, once: those running when it
    # died, and those that ended after its agent's last report (at least once, as
    # Borg; how many depends on the report's timing, so no count is asserted).
    assert max(indexes.count(i) for i in set(indexes)) <= 2
    assert survivor.proc is not None


def test_a_prod_pod_preempts_an_array_alloc(master: Master, agents: Any,
                                            tmp_path: Path) -> None:
    node = agents(master, "arr-small", "--cpus", "1", node_ip="127.0.1.47")
    out = tmp_path / "ran"
    with master.http() as http:
        merge_patch(http, f"/api/v1/nodes/{node.name}",
                    {"metadata": {"labels": {"arrays": "preempt-test"}}})
        job = array_job("preemptible", 60, f'sleep 0.2; echo $JOB_COMPLETION_INDEX >> {out}',
                        parallelism=2, template_spec={
                            "priorityClassName": "batch",
                            "nodeSelector": {"arrays": "preempt-test"}})
        job["spec"]["template"]["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "400m"}}
        create(http, job)
        wait_for(lambda: len(ran(out)) >= 5, 60, "the array running")
        prod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "prod-web"},
                "spec": {"priorityClassName": "production", "terminationGracePeriodSeconds": 1,
                         "nodeSelector": {"arrays": "preempt-test"},
                         "containers": [{"name": "web", "image": "none",
                                         "command": ["sleep", "30"],
                                         "resources": {"requests": {"cpu": "700m"}}}]}}
        assert http.post("/api/v1/namespaces/default/pods", json=prod).status_code == 201
        wait_for(lambda: (http.get("/api/v1/namespaces/default/pods/prod-web").json()
                          .get("spec", {}).get("nodeName")), 60, "the prod pod placed")
        events = wait_for(lambda: [e for e in http.get(
            "/api/v1/namespaces/default/events",
            params={"fieldSelector": "reason=Preempted"}).json()["items"]
            if e["involvedObject"]["kind"] == "Alloc"], 30, "an Alloc preempted")
        assert events[0]["involvedObject"]["name"].startswith("preemptible-")
        http.delete("/api/v1/namespaces/default/pods/prod-web")
        wait_for(lambda: condition(http, "preemptible", "Complete"), 120, "Complete after")
    assert sorted(set(ran(out))) == list(range(60))
