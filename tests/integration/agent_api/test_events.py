"""The agent records the kubelet's Events, so `kubectl describe pod` says why a
pod is not running: BackOff for a crash loop, Unhealthy and Killing for a
failing liveness probe, Failed for a container that cannot be configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.cluster import Agent, Master
from tests.integration.agent_api.conftest import container_status, create_pod, make_pod, wait_pod
from tests.kubectl import Kubectl
from tests.poll import wait_for

EVENTS = "/api/v1/namespaces/default/events"


def _events(http: httpx.Client, pod: str) -> list[dict[str, Any]]:
    r = http.get(EVENTS, params={"fieldSelector": f"involvedObject.name={pod}"})
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _wait_reasons(http: httpx.Client, pod: str, wanted: set[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = wait_for(
        lambda: (events := _events(http, pod)) and wanted <= {e["reason"] for e in events}
        and events, what=f"events {sorted(wanted)} about pod {pod}")
    return found


def test_crash_loop_shows_back_off_in_describe(node: Agent, master: Master,
                                               http: httpx.Client, tmp_path: Path) -> None:
    pod = create_pod(http, make_pod("crasher", node.name, ["sh", "-c", "exit 3"],
                                    restart="Always"))
    wait_pod(http, "crasher", lambda p: (container_status(p).get("state") or {}).get(
        "waiting", {}).get("reason") == "CrashLoopBackOff")
    events = _wait_reasons(http, "crasher", {"Pulled", "Created", "Started", "BackOff"})
    back_off = next(e for e in events if e["reason"] == "BackOff")
    assert back_off["type"] == "Warning"
    assert back_off["message"] == (f"Back-off restarting failed container main in pod "
                                   f"crasher_default({pod['metadata']['uid']})")
    assert back_off["involvedObject"]["fieldPath"] == "spec.containers{main}"
    assert back_off["involvedObject"]["uid"] == pod["metadata"]["uid"]
    assert back_off["source"] == {"component": "kubelet", "host": node.name}
    started = next(e for e in events if e["reason"] == "Started")
    assert started["message"] == "Started container main" and started["type"] == "Normal"
    described = Kubectl(master, tmp_path)("describe", "pod", "crasher")
    events_section = described.split("Events:", 1)[1]
    assert "BackOff" in events_section and "kubelet" in events_section
    assert "Back-off restarting failed container main in pod crasher_default" in described


def test_failing_liveness_probe_is_unhealthy_then_killed(node: Agent,
                                                         http: httpx.Client) -> None:
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}
    create_pod(http, make_pod("sickly", node.name, ["sleep", "600"], restart="Always",
                              livenessProbe=probe))
    events = _wait_reasons(http, "sickly", {"Unhealthy", "Killing"})
    unhealthy = next(e for e in events if e["reason"] == "Unhealthy")
    assert unhealthy["type"] == "Warning"
    assert unhealthy["message"].startswith("Liveness probe failed")
    killing = next(e for e in events if e["reason"] == "Killing")
    assert killing["message"] == "Container main failed liveness probe, will be restarted"


def test_missing_config_is_a_failed_event(node: Agent, http: httpx.Client) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]
    create_pod(http, make_pod("unconfigured", node.name, ["true"], env=env))
    events = _wait_reasons(http, "unconfigured", {"Failed"})
    failed = next(e for e in events if e["reason"] == "Failed")
    assert failed["type"] == "Warning" and failed["message"].startswith("Error: ")
    assert "absent" in failed["message"]
