"""Pods run for real by an agent: exit codes under each restartPolicy,
CrashLoopBackOff growth, a command that does not exist, OOMKilled."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.cluster import Agent
from tests.integration.agent_api.conftest import (
    condition,
    container_status,
    create_pod,
    make_pod,
    phase,
    wait_pod,
)


def _terminated(pod: dict) -> dict:  # type: ignore[type-arg]
    return container_status(pod).get("state", {}).get("terminated") or {}


@pytest.mark.parametrize(("code", "expected_phase", "reason"),
                         [(0, "Succeeded", "Completed"), (1, "Failed", "Error")])
def test_never_runs_once_and_reports_the_exit(node: Agent, http: httpx.Client, code: int,
                                              expected_phase: str, reason: str) -> None:
    name = f"never-{code}"
    create_pod(http, make_pod(name, node.name, ["sh", "-c", f"exit {code}"], restart="Never"))
    pod = wait_pod(http, name, lambda p: phase(p) in ("Succeeded", "Failed"))
    assert phase(pod) == expected_phase
    status = container_status(pod)
    assert _terminated(pod)["exitCode"] == code
    assert _terminated(pod)["reason"] == reason
    assert status["restartCount"] == 0 and status["ready"] is False
    assert condition(pod, "Ready") == "False"
    assert pod["status"]["hostIP"] == node.node_ip == pod["status"]["podIP"]
    assert pod["status"]["startTime"]


def test_on_failure_restarts_a_failure_until_it_succeeds(node: Agent, http: httpx.Client,
                                                         tmp_path: object) -> None:
    # Fails on its first run, succeeds on the second (a marker in its work dir).
    script = "if [ -f tried ]; then exit 0; fi; touch tried; exit 2"
    create_pod(http, make_pod("onfail", node.name, ["sh", "-c", script], restart="OnFailure"))
    pod = wait_pod(http, "onfail", lambda p: phase(p) == "Succeeded")
    status = container_status(pod)
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 2
    assert _terminated(pod)["reason"] == "Completed"


def test_on_failure_does_not_restart_success(node: Agent, http: httpx.Client) -> None:
    create_pod(http, make_pod("onfail-ok", node.name, ["true"], restart="OnFailure"))
    pod = wait_pod(http, "onfail-ok", lambda p: phase(p) == "Succeeded")
    assert container_status(pod)["restartCount"] == 0


@pytest.mark.parametrize("code", [0, 1])
def test_always_restarts_whatever_the_exit(node: Agent, http: httpx.Client, code: int) -> None:
    name = f"always-{code}"
    create_pod(http, make_pod(name, node.name, ["sh", "-c", f"exit {code}"], restart="Always"))
    pod = wait_pod(http, name, lambda p: container_status(p).get("restartCount", 0) >= 2)
    assert phase(pod) == "Running"  # restarting is running, for restartPolicy Always
    last = container_status(pod)["lastState"]["terminated"]
    assert last["exitCode"] == code
    assert last["reason"] == ("Completed" if code == 0 else "Error")


def test_crash_loop_back_off_doubles(node: Agent, http: httpx.Client) -> None:
    # The harness runs agents with --backoff-initial 1 --backoff-cap 8.
    create_pod(http, make_pod("crashy", node.name, ["false"], restart="Always"))
    delays: list[float] = []

    def note_delay(pod: dict) -> bool:  # type: ignore[type-arg]
        waiting = container_status(pod).get("state", {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            match = re.match(r"back-off ([\d.]+)s restarting failed container=main",
                             waiting.get("message", ""))
            assert match, waiting
            delay = float(match.group(1))
            if not delays or delays[-1] != delay:
                delays.append(delay)
        return len(delays) >= 3

    wait_pod(http, "crashy", note_delay, timeout=40)
    assert delays[:3] == [1.0, 2.0, 4.0]


def test_missing_command_is_a_start_error_and_the_agent_lives(node: Agent,
                                                             http: httpx.Client) -> None:
    create_pod(http, make_pod("nocmd", node.name, ["/no/such/program", "x"], restart="Never"))
    pod = wait_pod(http, "nocmd", lambda p: phase(p) == "Failed")
    terminated = _terminated(pod)
    assert terminated["reason"] == "StartError"
    assert "no/such/program" in terminated["message"]
    assert terminated["exitCode"] == 128

    create_pod(http, make_pod("nocmd-always", node.name, ["no-such-program-xyz"],
                              restart="Always"))
    pod = wait_pod(http, "nocmd-always", lambda p: (container_status(p).get("state", {})
                                                    .get("waiting", {}).get("reason")
                                                    == "CrashLoopBackOff"))
    last = container_status(pod)["lastState"]["terminated"]
    assert last["reason"] == "StartError"
    assert "executable file not found" in last["message"]
    assert node.proc is not None and node.proc.poll() is None  # the agent is alive

    create_pod(http, make_pod("after-nocmd", node.name, ["true"]))  # and still runs pods
    wait_pod(http, "after-nocmd", lambda p: phase(p) == "Succeeded")


def test_init_containers_run_in_order_before_the_containers(node: Agent,
                                                            http: httpx.Client) -> None:
    pod = make_pod("inits", node.name, ["sh", "-c", "cat order"])
    pod["spec"]["initContainers"] = [
        {"name": "first", "image": "none", "command": ["sh", "-c", "echo first >> order"]},
        {"name": "second", "image": "none", "command": ["sh", "-c", "echo second >> order"]},
    ]
    create_pod(http, pod)
    done = wait_pod(http, "inits", lambda p: phase(p) == "Succeeded")
    inits = done["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]
    assert condition(done, "Initialized") == "True"
    log = http.get("/api/v1/namespaces/default/pods/inits/log").text
    assert log == "first\nsecond\n"


def test_failed_init_container_with_never_fails_the_pod(node: Agent,
                                                        http: httpx.Client) -> None:
    pod = make_pod("init-fails", node.name, ["true"])
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "none", "command": ["false"]}]
    create_pod(http, pod)
    failed = wait_pod(http, "init-fails", lambda p: phase(p) == "Failed")
    assert container_status(failed)["state"]["waiting"]["reason"] == "PodInitializing"
    init = failed["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["exitCode"] == 1
    assert condition(failed, "Initialized") == "False"


def test_memory_hog_is_oom_killed(node: Agent, http: httpx.Client) -> None:
    info = http.get(f"/api/v1/nodes/{node.name}").json()
    mechanism = info["metadata"]["annotations"]["corral.dev/isolation"]
    assert mechanism != "rlimits", ("no writable memory cgroup on this machine (the node "
                                    "reports rlimits): the kernel cannot OOM-kill by a limit")
    hog = ["python3", "-c", "x = bytearray(400 * 1024 * 1024); import time; time.sleep(30)"]
    create_pod(http, make_pod("hog", node.name, hog, restart="Never",
                              resources={"limits": {"memory": "64Mi"}}))
    pod = wait_pod(http, "hog", lambda p: phase(p) == "Failed")
    terminated = _terminated(pod)
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137
