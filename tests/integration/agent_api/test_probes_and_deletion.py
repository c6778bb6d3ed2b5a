"""Probes drive restarts and readiness; deletion honours the grace period."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.cluster import Agent
from tests.integration.agent_api.conftest import (
    alive,
    condition,
    container_status,
    create_pod,
    get_pod,
    instances,
    make_pod,
    phase,
    wait_gone,
    wait_pod,
)


def _exec_probe(command: list[str], **timing: int) -> dict:  # type: ignore[type-arg]
    return {"exec": {"command": command}, "periodSeconds": 1, "failureThreshold": 1,
            **timing}

# The probes test files under the test's own 0700 temp dir: only root gets there.
AS_ROOT = {"runAsUser": 0}


def test_failed_liveness_probe_restarts_the_container(node: Agent, http: httpx.Client,
                                                      tmp_path: Path) -> None:
    # Healthy while the file exists; the test removes it once the pod runs.
    health = tmp_path / "healthy"
    health.touch()
    create_pod(http, make_pod("live", node.name, ["sleep", "60"], restart="Always",
                              livenessProbe=_exec_probe(["test", "-f", str(health)]),
                              securityContext=AS_ROOT))
    wait_pod(http, "live", lambda p: container_status(p).get("ready") is True)
    health.unlink()
    pod = wait_pod(http, "live", lambda p: container_status(p).get("restartCount", 0) >= 1)
    last = container_status(pod)["lastState"]["terminated"]
    assert "failed liveness probe" in last["message"]
    health.touch()  # healthy again: the new instance keeps running
    pod = wait_pod(http, "live", lambda p: container_status(p).get("ready") is True
                   and "running" in container_status(p)["state"])
    assert container_status(pod)["restartCount"] >= 1


def test_readiness_probe_toggles_ready(node: Agent, http: httpx.Client,
                                       tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    probe = {"exec": {"command": ["test", "-f", str(ready)]}, "periodSeconds": 1,
             "failureThreshold": 1, "successThreshold": 1}
    create_pod(http, make_pod("readyz", node.name, ["sleep", "60"], restart="Always",
                              readinessProbe=probe, securityContext=AS_ROOT))
    pod = wait_pod(http, "readyz", lambda p: phase(p) == "Running")
    assert condition(pod, "Ready") == "False"  # readiness starts failed
    ready.touch()
    pod = wait_pod(http, "readyz", lambda p: condition(p, "Ready") == "True")
    assert condition(pod, "ContainersReady") == "True"
    assert container_status(pod)["ready"] is True
    ready.unlink()
    pod = wait_pod(http, "readyz", lambda p: condition(p, "Ready") == "False")
    assert container_status(pod)["restartCount"] == 0  # readiness never restarts


def test_graceful_deletion_waits_for_the_grace_then_removes_the_object(
        node: Agent, http: httpx.Client) -> None:
    # Ignores SIGTERM: only the SIGKILL at the end of the 3 s grace ends it.
    script = "trap 'echo got TERM' TERM; while true; do sleep 0.1; done"
    created = create_pod(http, make_pod("graceful", node.name, ["sh", "-c", script],
                                        spec={"terminationGracePeriodSeconds": 3}))
    uid = created["metadata"]["uid"]
    wait_pod(http, "graceful", lambda p: phase(p) == "Running")
    (state,) = [s for s in instances(node, uid) if s.running]
    assert state.pid is not None
    r = http.request("DELETE", "/api/v1/namespaces/default/pods/graceful")
    assert r.status_code == 200, r.text
    time.sleep(1.0)
    during = get_pod(http, "graceful")
    assert during is not None and during["metadata"].get("deletionTimestamp")
    assert alive(state.pid)  # still in its grace period
    wait_gone(http, "graceful")
    deadline = time.monotonic() + 10
    while alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(state.pid)
    assert instances(node, uid) == []  # the agent forgot it: no leftover state
    assert not (node.state_dir / "pods" / uid).exists()


def test_deleting_a_pod_that_exits_on_term_is_quick_and_complete(
        node: Agent, http: httpx.Client) -> None:
    created = create_pod(http, make_pod("polite", node.name, ["sleep", "300"],
                                        spec={"terminationGracePeriodSeconds": 30}))
    uid = created["metadata"]["uid"]
    wait_pod(http, "polite", lambda p: phase(p) == "Running")
    (state,) = [s for s in instances(node, uid) if s.running]
    assert http.request("DELETE", "/api/v1/namespaces/default/pods/polite").status_code == 200
    wait_gone(http, "polite", timeout=20)  # long before the 30 s grace: sleep obeys TERM
    assert state.pid is not None and not alive(state.pid)
