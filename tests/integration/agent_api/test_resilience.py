"""The node keeps its tasks through agent crashes and master outages."""

from __future__ import annotations

import time

from tests.cluster import Agent, Master
from tests.integration.agent_api.conftest import (
    alive,
    container_status,
    create_pod,
    get_pod,
    instances,
    make_pod,
    phase,
    wait_gone,
    wait_pod,
)
from tests.poll import wait_for

_FOREVER_UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                        "effect": "NoExecute"}


def _running_pids(agent: Agent, uid: str) -> list[int]:
    return [s.pid for s in instances(agent, uid) if s.running and s.pid is not None]


def test_agent_kill_9_and_restart_adopts_everything(fresh_master: Master, agents) -> None:  # type: ignore[no-untyped-def]
    agent: Agent = agents(fresh_master, "node-crash", node_ip="127.0.1.22")
    with fresh_master.http() as http:
        uids = {}
        for i in range(5):
            # Tolerating unreachability forever: the agent's restart may take longer
            # than the node grace plus eviction timeout on a loaded machine, and this
            # test is about adoption, not eviction.
            pod = create_pod(http, make_pod(f"task-{i}", agent.name, ["sleep", "300"],
                                            restart="Always",
                                            spec={"tolerations": [_FOREVER_UNREACHABLE]}))
            uids[f"task-{i}"] = pod["metadata"]["uid"]
        for name in uids:
            wait_pod(http, name, lambda p: phase(p) == "Running")
        pids = {name: _running_pids(agent, uid) for name, uid in uids.items()}
        assert all(len(p) == 1 for p in pids.values()), pids

        agent.kill()
        assert all(alive(p[0]) for p in pids.values())  # tasks outlive their agent
        # Deleted while the agent is away: the object waits for the agent.
        assert http.request("DELETE", "/api/v1/namespaces/default/pods/task-4").status_code \
            == 200
        time.sleep(0.5)
        assert get_pod(http, "task-4") is not None

        agent.start()
        wait_gone(http, "task-4")
        deadline = time.monotonic() + 10
        while alive(pids["task-4"][0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pids["task-4"][0])
        assert instances(agent, uids["task-4"]) == []

        time.sleep(2)  # several sync passes of the new agent
        for i in range(4):
            name = f"task-{i}"
            assert _running_pids(agent, uids[name]) == pids[name]  # same process, no copy
            assert len(instances(agent, uids[name])) == 1
            pod = get_pod(http, name)
            assert pod is not None and phase(pod) == "Running"
            status = container_status(pod)
            assert status["restartCount"] == 0 and "running" in status["state"]


def test_master_outage_keeps_tasks_running_and_status_catches_up(fresh_master: Master,
                                                                 agents) -> None:  # type: ignore[no-untyped-def]
    agent: Agent = agents(fresh_master, "node-outage", node_ip="127.0.1.23")
    with fresh_master.http() as http:
        steady = create_pod(http, make_pod("steady", agent.name, ["sleep", "300"],
                                           restart="Always"))
        flaky = create_pod(http, make_pod("flaky", agent.name, ["sh", "-c", "sleep 0.3; exit 1"],
                                          restart="Always"))
        wait_pod(http, "steady", lambda p: phase(p) == "Running")
        (steady_pid,) = _running_pids(agent, steady["metadata"]["uid"])
        lease_path = ("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"
                      f"{agent.name}")
        renewed_before = http.get(lease_path).json()["spec"]["renewTime"]

    def attempts() -> int:
        return max(s.attempt for s in instances(agent, flaky["metadata"]["uid"]))

    fresh_master.stop()
    during_start = attempts()
    # The agent keeps supervising (restarting the flaky task) while the master is down...
    wait_for(lambda: attempts() > during_start, timeout=30, what="a restart without a master")
    assert alive(steady_pid)  # ...and the master being down never kills tasks
    assert agent.proc is not None and agent.proc.poll() is None
    restarts_on_node = attempts()

    fresh_master.start()
    with fresh_master.http() as http:
        pod = wait_pod(http, "flaky",
                       lambda p: container_status(p).get("restartCount", 0) >= restarts_on_node)
        assert phase(pod) == "Running"
        steady_now = get_pod(http, "steady")
        assert steady_now is not None and phase(steady_now) == "Running"
        assert _running_pids(agent, steady["metadata"]["uid"]) == [steady_pid]
        deadline = time.monotonic() + 20
        while http.get(lease_path).json()["spec"]["renewTime"] == renewed_before:
            assert time.monotonic() < deadline, "the lease was never renewed after the outage"
            time.sleep(0.2)
