"""Helpers for agent tests against a real master and real `corral agent` processes.

    master    one master for the whole package (tests/conftest.py's is per module):
              starting a master and an agent was most of what a module here cost
    node      one agent for the whole package on that master; it and every pod it
              ran are stopped at the end
    (autouse) after each module, what it made goes: its pods (and their processes
              on the node), the objects it created, the nodes of its own agents,
              and the default namespace's labels as they were
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
from tests.conftest import started_master
from tests.poll import wait_for


@pytest.fixture(scope="package")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    yield from started_master(tmp_path_factory)


@pytest.fixture(scope="package")
def node(master: Master, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    name = f"node-{uuid.uuid4().hex[:6]}"
    agent = Agent(master, name, tmp_path_factory.mktemp("agent") / name, "127.0.1.20")
    try:
        _SHARED_NODES.append(agent.start())
        yield agent
    finally:
        _SHARED_NODES.clear()
        agent.cleanup()


_SHARED_NODES: list[Agent] = []  # the package's node, once a module has asked for it


# What a module may create in the shared cluster, removed after it; then its Events
# (a later module's pod of the same name must not see them).
_MADE_BY_MODULES = ("/api/v1/pods", "/api/v1/configmaps", "/api/v1/secrets",
                    "/api/v1/services", "/apis/apps/v1/deployments",
                    "/apis/apps/v1/replicasets", "/apis/corral.dev/v1/allocs")
_EVENTS = "/api/v1/events"


def _objects(http: httpx.Client, path: str) -> dict[str, str]:
    """Every object at ``path`` (all namespaces): its own URL → its uid."""
    r = http.get(path)
    assert r.status_code == 200, r.text
    prefix, _, plural = path.rpartition("/")
    return {f"{prefix}/namespaces/{o['metadata']['namespace']}/{plural}/"
            f"{o['metadata']['name']}": o["metadata"]["uid"] for o in r.json()["items"]}


@pytest.fixture(scope="module", autouse=True)
def _module_leaves_the_cluster_as_it_found_it(master: Master) -> Iterator[None]:
    with master.http() as http:
        before = {path: _objects(http, path) for path in (*_MADE_BY_MODULES, _EVENTS)}
        nodes = _node_names(http)
        labels = _default_labels(http)
    yield
    with master.http() as http:
        pod_uids = _delete_new(http, before, _MADE_BY_MODULES)
        for agent in _SHARED_NODES:  # the shared node stops the deleted pods' processes
            wait_for(lambda a=agent: not [s for s in instances(a)  # type: ignore[misc]
                                          if s.running and s.pod_uid in pod_uids],
                     60, f"the module's containers on {agent.name} stopped")
        _delete_new(http, before, (_EVENTS,))
        for name in _node_names(http) - nodes:  # of the module's own agents, stopped by now
            assert http.delete(f"/api/v1/nodes/{name}").status_code in (200, 404)
        current = _default_labels(http)
        changed = {k: labels.get(k) for k in current.keys() | labels.keys()
                   if current.get(k) != labels.get(k)}
        if changed:
            r = http.patch("/api/v1/namespaces/default", json={"metadata": {"labels": changed}},
                           headers={"Content-Type": "application/merge-patch+json"})
            assert r.status_code == 200, r.text


def _delete_new(http: httpx.Client, before: dict[str, dict[str, str]],
                paths: tuple[str, ...]) -> set[str]:
    """Delete (grace 0) what was not there before under ``paths``, wait until it is
    gone, and return the uids deleted."""
    deleted: dict[str, str] = {}
    for path in paths:
        for url, uid in _objects(http, path).items():
            if before[path].get(url) != uid:
                r = http.delete(url, params={"gracePeriodSeconds": "0",
                                             "propagationPolicy": "Background"})
                assert r.status_code in (200, 202, 404), r.text
                deleted[url] = uid

    def gone() -> bool:
        return all(http.get(url).json().get("metadata", {}).get("uid") != uid
                   for url, uid in deleted.items())

    wait_for(gone, 60, f"the module's objects gone: {sorted(deleted)}")
    return set(deleted.values())


def _node_names(http: httpx.Client) -> set[str]:
    return {n["metadata"]["name"] for n in http.get("/api/v1/nodes").json()["items"]}


def _default_labels(http: httpx.Client) -> dict[str, str]:
    return dict(http.get("/api/v1/namespaces/default").json()["metadata"].get("labels") or {})


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
