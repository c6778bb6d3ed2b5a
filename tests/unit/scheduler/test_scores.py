"""Scores on crafted clusters: spread, bin-pack, owner spreading, preferred
affinity, PreferNoSchedule, and random but seedable tie-breaking."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from corral.scheduler.core import CoreMemory, SchedulerOptions, schedule
from corral.scheduler.requirements import pod_requirements
from corral.scheduler.scores import node_score
from corral.scheduler.snapshot import NodeInfo
from tests.unit.scheduler.objects import cluster, node, pod


def two_nodes_one_busy() -> tuple[dict[str, Any], dict[str, Any], tuple[dict[str, Any], ...]]:
    busy = pod("busy", cpu="2", memory="4Gi", node_name="a")
    return node("a"), node("b"), (busy,)


def test_least_allocated_spreads_by_default() -> None:
    a, b, bound = two_nodes_one_busy()
    assert schedule(cluster(a, b, pods=bound), pod("p")).node == "b"


def test_most_allocated_bin_packs() -> None:
    a, b, bound = two_nodes_one_busy()
    options = SchedulerOptions(bin_pack=True)
    assert schedule(cluster(a, b, pods=bound), pod("p"), options).node == "a"


def test_bin_pack_still_respects_fit() -> None:
    full = pod("full", cpu="3900m", node_name="a")
    options = SchedulerOptions(bin_pack=True)
    assert schedule(cluster(node("a"), node("b"), pods=(full,)), pod("p", cpu="500m"),
                    options).node == "b"


def test_replicas_of_one_owner_spread() -> None:
    # b is a little busier, but a already runs a replica of the same owner.
    memory = CoreMemory()
    sibling = pod("r0", cpu="100m", owner="rs-1", node_name="a")
    other = pod("x", cpu="300m", node_name="b")
    snapshot = cluster(node("a"), node("b"), pods=(sibling, other))
    assert schedule(snapshot, pod("r1", owner="rs-1"), memory=memory).node == "b"
    assert schedule(snapshot, pod("y"), memory=memory).node == "a"  # without an owner, a is emptier


def test_preferred_node_affinity() -> None:
    memory = CoreMemory()
    prefer_ssd = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}
    busy = pod("busy", cpu="1", node_name="ssd")
    snapshot = cluster(node("hdd"), node("ssd", labels={"disk": "ssd"}), pods=(busy,))
    assert schedule(snapshot, pod("p", affinity=prefer_ssd), memory=memory).node == "ssd"
    assert schedule(snapshot, pod("q"), memory=memory).node == "hdd"


def test_prefer_no_schedule_taint_scores_lower() -> None:
    memory = CoreMemory()
    spot = node("spot", taints=[{"key": "spot", "value": "true",
                                 "effect": "PreferNoSchedule"}])
    busy = pod("busy", cpu="1", node_name="plain")
    snapshot = cluster(spot, node("plain"), pods=(busy,))
    assert schedule(snapshot, pod("p"), memory=memory).node == "plain"
    tolerant = pod("t", tolerations=[{"key": "spot", "operator": "Exists"}])
    assert schedule(snapshot, tolerant, memory=memory).node == "spot"


def test_node_score_parts() -> None:
    snapshot = cluster(node("a", cpu="4", memory="4Gi"))
    info = snapshot.node("a")
    assert isinstance(info, NodeInfo)
    half = pod_requirements(pod("p", cpu="2", memory="2Gi"))
    # least allocated 50 + untainted 3 * 100; bin-pack 50 + 300 as well
    assert node_score(half, info) == 50 + 300
    quarter = pod_requirements(pod("q", cpu="1", memory="1Gi"))
    assert node_score(quarter, info) == 75 + 300
    assert node_score(quarter, info, bin_pack=True) == 25 + 300


def test_ties_are_broken_randomly_and_reproducibly() -> None:
    def picks(seed: int) -> list[str | None]:
        snapshot = cluster(*(node(f"n{i}") for i in range(8)))
        options = SchedulerOptions(rng=random.Random(seed))
        return [schedule(snapshot, pod(f"p{k}"), options).node for k in range(40)]

    first = picks(7)
    assert first == picks(7)
    assert first != picks(8)
    assert len(Counter(first)) > 4  # identical empty nodes: not always the same one
