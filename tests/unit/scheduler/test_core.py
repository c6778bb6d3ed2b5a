"""schedule(): failure messages, sampling, and the caches' invalidation."""

from __future__ import annotations

import random
from typing import Any

import pytest

from corral.scheduler.core import (
    CoreMemory,
    SchedulerOptions,
    fit_error_message,
    nodes_to_find,
    schedule,
)
from corral.scheduler.snapshot import ClusterSnapshot
from tests.unit.scheduler.objects import cluster, node, pod

GPU_TAINT = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]


def test_failure_message_counts_reasons_like_kubernetes() -> None:
    snapshot = cluster(*(node(f"small{i}", cpu="1") for i in range(3)),
                       *(node(f"gpu{i}", cpu="8", taints=GPU_TAINT) for i in range(2)))
    decision = schedule(snapshot, pod("p", cpu="2"))
    assert decision.node is None
    assert decision.reasons == {"Insufficient cpu": 3,
                                "node(s) had untolerated taint {dedicated: gpu}": 2}
    # kube-scheduler sorts the "<count> <reason>" strings themselves.
    assert decision.message == ("0/5 nodes are available: 2 node(s) had untolerated taint "
                                "{dedicated: gpu}, 3 Insufficient cpu.")


def test_message_with_several_resources_short_and_no_nodes() -> None:
    decision = schedule(cluster(node("a", cpu="1", memory="1Gi")),
                        pod("p", cpu="2", memory="2Gi"))
    assert decision.message == "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    assert schedule(ClusterSnapshot(), pod("p")).message == "no nodes available to schedule pods"
    assert fit_error_message(12, {"b": 10, "a": 2}) == "0/12 nodes are available: 10 b, 2 a."


@pytest.mark.parametrize(("n", "percentage", "expected"), [
    (50, 0, 50), (100, 0, 100), (1000, 0, 420), (5000, 0, 500), (20000, 0, 1000),
    (5000, 30, 1500), (5000, 1, 100), (5000, 100, 5000),
])
def test_nodes_to_find(n: int, percentage: int, expected: int) -> None:
    assert nodes_to_find(n, percentage) == expected


def test_assumed_pods_consume_capacity() -> None:
    memory = CoreMemory()
    snapshot = cluster(node("a", cpu="1"), node("b", cpu="1"))
    placed = []
    for i in range(4):
        p = pod(f"p{i}", cpu="500m")
        decision = schedule(snapshot, p, memory=memory)
        assert decision.node is not None
        snapshot.add_pod(p, decision.node)
        placed.append(decision.node)
    assert sorted(placed) == ["a", "a", "b", "b"]
    assert schedule(snapshot, pod("p4", cpu="500m"), memory=memory).reasons == {"Insufficient cpu": 2}
    snapshot.remove_pod("default/p0")
    assert schedule(snapshot, pod("p4", cpu="500m"), memory=memory).node == placed[0]


def test_cache_invalidated_when_a_node_changes() -> None:
    memory = CoreMemory()
    snapshot = cluster(node("a", labels={"disk": "ssd"}), node("b"))
    ssd: dict[str, Any] = {"nodeSelector": {"disk": "ssd"}}
    assert schedule(snapshot, pod("p", **ssd), memory=memory).node == "a"
    snapshot.update_node(node("a", labels={"disk": "ssd"}, unschedulable=True))
    assert schedule(snapshot, pod("q", **ssd), memory=memory).message == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were unschedulable.")
    snapshot.update_node(node("b", labels={"disk": "ssd"}))
    assert schedule(snapshot, pod("r", **ssd), memory=memory).node == "b"


def test_failed_class_is_placed_as_soon_as_a_node_joins() -> None:
    memory = CoreMemory()
    snapshot = cluster(node("a", cpu="1"))
    for name in ("p", "q"):  # the second attempt comes from the failure memo
        assert schedule(snapshot, pod(name, cpu="2"), memory=memory).reasons == {"Insufficient cpu": 1}
    snapshot.add_node(node("b", cpu="1", taints=GPU_TAINT))
    assert schedule(snapshot, pod("r", cpu="2"), memory=memory).message == (
        "0/2 nodes are available: 1 Insufficient cpu, "
        "1 node(s) had untolerated taint {dedicated: gpu}.")
    snapshot.add_node(node("c", cpu="4"))
    assert schedule(snapshot, pod("s", cpu="2"), memory=memory).node == "c"


def test_failure_memo_follows_pod_removal() -> None:
    memory = CoreMemory()
    snapshot = cluster(node("a", cpu="1"), pods=(pod("big", cpu="1", node_name="a"),))
    assert schedule(snapshot, pod("p", cpu="500m"), memory=memory).node is None
    assert schedule(snapshot, pod("q", cpu="500m"), memory=memory).node is None
    snapshot.remove_pod("default/big")
    assert schedule(snapshot, pod("r", cpu="500m"), memory=memory).node == "a"


def test_node_removal_keeps_indexes_consistent() -> None:
    memory = CoreMemory()
    snapshot = cluster(*(node(f"n{i}", cpu="1") for i in range(70)))
    snapshot.add_pod(pod("x", cpu="1"), "n69")
    snapshot.remove_node("n3")  # n69 moves into slot 3
    assert snapshot.node("n69").index == 3  # type: ignore[union-attr]
    assert snapshot.node("n69").cpu == 1000  # type: ignore[union-attr]
    names = set()
    for i in range(68):
        p = pod(f"p{i}", cpu="1")
        decision = schedule(snapshot, p, memory=memory)
        assert decision.node is not None and decision.node != "n69"
        snapshot.add_pod(p, decision.node)
        names.add(decision.node)
    assert len(names) == 68 and "n3" not in names
    assert schedule(snapshot, pod("last", cpu="1"), memory=memory).node is None


@pytest.mark.parametrize("options", [
    SchedulerOptions(equivalence_classes=False),
    SchedulerOptions(score_cache=False),
    SchedulerOptions(percentage_of_nodes_to_score=100),
])
def test_speed_techniques_off_give_valid_placements(options: SchedulerOptions) -> None:
    for incremental in (True, False):
        snapshot, memory = ClusterSnapshot(incremental=incremental), CoreMemory()
        for i in range(150):
            snapshot.add_node(node(f"n{i}", cpu="2", taints=GPU_TAINT if i % 10 == 0 else []))
        opts = SchedulerOptions(**{**options.__dict__, "rng": random.Random(1)})
        for k in range(270):
            p = pod(f"p{k}", cpu="900m")
            decision = schedule(snapshot, p, opts, memory=memory)
            assert decision.node is not None and not decision.node.endswith("0")
            snapshot.add_pod(p, decision.node)
        for n in snapshot.nodes:
            n.recount()
            assert n.cpu <= n.alloc_cpu
        assert schedule(snapshot, pod("extra", cpu="900m"), opts, memory=memory).reasons == {
            "Insufficient cpu": 135, "node(s) had untolerated taint {dedicated: gpu}": 15}


def test_sampling_rotates_and_scores_a_window() -> None:
    memory = CoreMemory()
    snapshot = cluster(*(node(f"n{i:03d}") for i in range(1000)))
    first = schedule(snapshot, pod("p"), memory=memory)
    assert first.sampled >= 420 and first.sampled < 1000
    start = memory.next_block
    assert start != 0
    schedule(snapshot, pod("q"), memory=memory)
    assert memory.next_block != start


def test_an_empty_cluster_says_so_as_kubernetes_does() -> None:
    from corral.scheduler.preemption import find_preemption

    snap = cluster()
    decision = schedule(snap, pod("p"))
    assert decision.node is None
    assert decision.message == "no nodes available to schedule pods"
    assert find_preemption(snap, pod("p")).message == ""
