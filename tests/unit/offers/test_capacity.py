"""What a node offers frameworks, from the scheduler's snapshot of it."""

from __future__ import annotations

from typing import Any

import pytest

from corral.agent.runtime.ports import DEFAULT_RANGE as POD_PORTS
from corral.api.alloc_view import pod_view
from corral.offers.capacity import (
    FRAMEWORK_PORTS,
    Held,
    framework_owned,
    free_ports,
    node_free,
    node_total,
    offerable,
)
from corral.offers.resources import Resources
from corral.scheduler.requirements import pod_requirements
from tests.unit.scheduler.objects import cluster, node, pod

RANGE = (10000, 10009)


def alloc(name: str, cpu: str, memory: str, node_name: str, *,
          framework: bool) -> dict[str, Any]:
    owner = {"apiVersion": "corral.dev/v1", "kind": "Framework" if framework else "Job",
             "name": "f", "uid": "u-f", "controller": True}
    return {"apiVersion": "corral.dev/v1", "kind": "Alloc",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "ownerReferences": [owner]},
            "spec": {"nodeName": node_name, "resources": {"cpu": cpu, "memory": memory}}}


def with_host_port(name: str, port: int, node_name: str) -> dict[str, Any]:
    p = pod(name, node_name=node_name)
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": port}]
    return p


def test_free_is_allocatable_less_pods_and_other_allocs_but_not_framework_allocs() -> None:
    fw = pod_view(alloc("fw", "1", "1Gi", "n1", framework=True))
    batch = pod_view(alloc("batch", "500m", "512Mi", "n1", framework=False))
    snapshot = cluster(node("n1", cpu="4", memory="8Gi"),
                       pods=(pod("web", cpu="1", memory="2Gi", node_name="n1"), fw, batch))
    info = snapshot.node("n1")
    assert info is not None
    held = Held().plus(pod_requirements(fw))
    assert node_free(info, held, RANGE) == Resources(cpus=2.5, mem=5632, ports=(RANGE,))
    # Without the framework's Alloc left out, its cpu would be counted twice.
    assert node_free(info, Held(), RANGE) == Resources(cpus=1.5, mem=4608, ports=(RANGE,))
    assert node_total(info, RANGE) == Resources(cpus=4, mem=8192, ports=(RANGE,))
    assert framework_owned(fw) and not framework_owned(batch)
    assert not framework_owned(pod("plain"))


def test_over_committed_nodes_offer_zero_not_negative() -> None:
    snapshot = cluster(node("n1", cpu="1", memory="1Gi"),
                       pods=(pod("big", cpu="2", memory="2Gi", node_name="n1"),))
    info = snapshot.node("n1")
    assert info is not None
    assert node_free(info, Held(), RANGE) == Resources(ports=(RANGE,))


def test_host_ports_in_the_range_are_not_offered() -> None:
    snapshot = cluster(node("n1"), pods=(with_host_port("a", 10003, "n1"),
                                         with_host_port("b", 10009, "n1"),
                                         with_host_port("c", 8080, "n1")))
    info = snapshot.node("n1")
    assert info is not None
    assert free_ports(info, RANGE) == ((10000, 10002), (10004, 10008))


@pytest.mark.parametrize(("node_obj", "pods"), [
    (node("n1", ready="False"), ()),
    (node("n1", ready="Unknown"), ()),
    (node("n1", unschedulable=True), ()),
    (node("n1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]), ()),
    (node("n1", taints=[{"key": "k", "value": "", "effect": "NoExecute"}]), ()),
    (node("n1", pods=2), (pod("a", node_name="n1"), pod("b", node_name="n1"))),
])
def test_nodes_that_cannot_take_an_alloc_offer_nothing(node_obj: dict[str, Any],
                                                       pods: tuple[dict[str, Any], ...]) -> None:
    info = cluster(node_obj, pods=pods).node("n1")
    assert info is not None
    assert not offerable(info)
    assert node_free(info, Held(), RANGE) is None


def test_prefer_no_schedule_taints_and_a_free_slot_still_offer() -> None:
    info = cluster(node("n1", pods=2,
                        taints=[{"key": "k", "value": "", "effect": "PreferNoSchedule"}]),
                   pods=(pod("a", node_name="n1"),)).node("n1")
    assert info is not None and offerable(info)


def test_framework_ports_stay_clear_of_the_ports_the_agent_gives_pods() -> None:
    low, high = FRAMEWORK_PORTS
    pods_low, pods_high = POD_PORTS
    assert high < pods_low or low > pods_high
    assert 1024 < low and high < 30000  # unprivileged, below NodePorts and ephemeral ports
