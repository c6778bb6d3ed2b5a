"""Helpers for agent tests against a real master and real `corral agent` processes.

    node      one agent per test module on the module's master (tests use unique
              pod names); it and every pod it ran are stopped after the module
    make_pod / create_pod / wait_pod / container_status   pod helpers over httpx
    allow_privileged(http, ns)   Pod Security level privileged for the namespace
    instances(agent)      what the agent's runtime has on disk (pids, attempts)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from corral.agent.runtime.base import ContainerState
from corral.agent.runtime.shim import StateDir
from corral.objects import Obj, status
from tests import manifests
from tests.cluster import Agent, Master
from tests.poll import wait_for


@pytest.fixture(scope="module")
def node(master: Master, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    name = f"node-{uuid.uuid4().hex[:6]}"
    agent = Agent(master, name, tmp_path_factory.mktemp("agent") / name, "127.0.1.20")
    try:
        yield agent.start()
    finally:
        agent.cleanup()


@pytest.fixture
def http(master: Master) -> Iterator[httpx.Client]:
    with master.http() as client:
        yield client


def make_pod(name: str, node: str, command: list[str], *, restart: str = "Never",
             **container: Any) -> Obj:
    spec_extra = container.pop("spec", {})
    return manifests.pod(name, containers=[manifests.container(command, **container)], **{
        "nodeName": node, "restartPolicy": restart, "terminationGracePeriodSeconds": 5,
        **spec_extra})


def allow_privileged(http: httpx.Client, namespace: str = "default") -> None:
    """Label the namespace Pod Security level privileged, for tests of what
    baseline (corral's default) refuses, such as a workingDir on the node."""
    r = http.patch(f"/api/v1/namespaces/{namespace}", json={"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
        "pod-security.kubernetes.io/audit": "privileged"}}},
        headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


def create_pod(http: httpx.Client, pod: Obj, namespace: str = "default") -> Obj:
    r = http.post(f"/api/v1/namespaces/{namespace}/pods", json=pod)
    assert r.status_code == 201, r.text
    return dict(r.json())


def get_pod(http: httpx.Client, name: str, namespace: str = "default") -> Obj | None:
    r = http.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_pod(http: httpx.Client, name: str, check: Callable[[Obj], bool],
             timeout: float = 30.0, namespace: str = "default") -> Obj:
    """Poll until check(pod) holds; fails with the last status seen."""
    seen: list[Obj | None] = [None]

    def passed() -> Obj | None:
        seen[0] = pod = get_pod(http, name, namespace)
        return pod if pod is not None and check(pod) else None

    try:
        return wait_for(passed, timeout, f"pod {name} to pass the check")
    except AssertionError:
        last = seen[0]
        raise AssertionError(f"pod {name} never passed the check; last: "
                             f"{last and last.get('status')}") from None


def wait_gone(http: httpx.Client, name: str, timeout: float = 30.0,
              namespace: str = "default") -> None:
    wait_for(lambda: get_pod(http, name, namespace) is None, timeout, f"pod {name} gone")


def phase(pod: Obj) -> str:
    return str(status(pod).get("phase"))


def container_status(pod: Obj, name: str = "main") -> Obj:
    for container in status(pod).get("containerStatuses") or []:
        if container["name"] == name:
            return dict(container)
    return {}


def condition(pod: Obj, type_: str) -> str | None:
    for cond in status(pod).get("conditions") or []:
        if cond["type"] == type_:
            return str(cond["status"])
    return None


def instances(agent: Agent, pod_uid: str | None = None) -> list[ContainerState]:
    """The runtime's instances on disk (the agent's own view of what runs)."""
    root = agent.state_dir / "runtime"
    found = []
    for launch in sorted(root.glob("*/launch.json")) if root.exists() else []:
        state = StateDir(launch.parent).read_status()
        if state is not None and (pod_uid is None or state.pod_uid == pod_uid):
            found.append(state)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
