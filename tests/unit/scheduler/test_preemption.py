"""Preemption picks the minimal set of lowest-priority victims on one node and
never touches a higher band; bands and their protection."""

from __future__ import annotations

from corral.api.priorityclasses import priority_class_objects
from corral.scheduler.bands import Band, band_of, may_preempt
from corral.scheduler.preemption import find_preemption
from tests.unit.scheduler.objects import cluster, node, pod

BATCH, PRODUCTION, MONITORING = 1_000, 100_000, 1_000_000


def victims(result: object) -> list[str]:
    preemption = getattr(result, "preemption", None)
    assert preemption is not None
    return sorted(v.key for v in preemption.victims)


def test_minimal_lowest_priority_victims_on_one_node() -> None:
    snapshot = cluster(node("a", cpu="4"), pods=(
        pod("low1", cpu="1", priority=0, node_name="a"),
        pod("low2", cpu="1", priority=0, node_name="a"),
        pod("mid", cpu="1", priority=10, node_name="a"),
        pod("high", cpu="1", priority=BATCH + 5, node_name="a"),
    ))
    result = find_preemption(snapshot, pod("p", cpu="2", priority=BATCH + 10))
    assert result.preemption is not None and result.preemption.node == "a"
    assert victims(result) == ["default/low1", "default/low2"]


def test_prefers_the_node_with_the_least_important_victims() -> None:
    snapshot = cluster(node("a", cpu="1"), node("b", cpu="1"), node("c", cpu="1"), pods=(
        pod("batch", cpu="1", priority=BATCH, node_name="a"),
        pod("free1", cpu="500m", priority=0, node_name="b"),
        pod("free2", cpu="500m", priority=0, node_name="b"),
        pod("free3", cpu="1", priority=0, node_name="c"),
    ))
    result = find_preemption(snapshot, pod("p", cpu="1", priority=PRODUCTION))
    assert result.preemption is not None and result.preemption.node == "c"
    assert victims(result) == ["default/free3"]


def test_never_a_victim_of_equal_or_higher_priority() -> None:
    snapshot = cluster(node("a", cpu="1"), pods=(
        pod("same", cpu="1", priority=BATCH, node_name="a"),))
    result = find_preemption(snapshot, pod("p", cpu="1", priority=BATCH))
    assert result.preemption is None
    assert result.message == ("preemption: 0/1 nodes are available: "
                              "1 No preemption victims found for incoming pod.")


def test_production_is_not_preempted_by_its_own_band() -> None:
    snapshot = cluster(node("a", cpu="1"), pods=(
        pod("prod", cpu="1", priority=PRODUCTION, node_name="a"),))
    assert find_preemption(snapshot, pod("p", cpu="1", priority=PRODUCTION + 500)
                           ).preemption is None
    assert victims(find_preemption(snapshot, pod("m", cpu="1", priority=MONITORING))) == [
        "default/prod"]


def test_no_preemption_when_it_would_not_make_the_pod_fit() -> None:
    tainted = node("t", cpu="8", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    snapshot = cluster(node("a", cpu="2"), tainted, pods=(
        pod("low", cpu="1", priority=0, node_name="a"),
        pod("high", cpu="1", priority=PRODUCTION, node_name="a"),
    ))
    result = find_preemption(snapshot, pod("p", cpu="2", priority=BATCH))
    assert result.preemption is None
    assert result.message == (
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming "
        "pod, 1 Preemption is not helpful for scheduling.")


def test_preemption_policy_never() -> None:
    snapshot = cluster(node("a", cpu="1"), pods=(pod("low", cpu="1", priority=0,
                                                     node_name="a"),))
    never = pod("p", cpu="1", priority=PRODUCTION, preemptionPolicy="Never")
    assert find_preemption(snapshot, never).preemption is None


def test_bands() -> None:
    assert [band_of(p) for p in (-5, 0, 999, BATCH, PRODUCTION - 1, PRODUCTION, MONITORING,
                                 2_000_000_000)] == [
        Band.BEST_EFFORT, Band.BEST_EFFORT, Band.BEST_EFFORT, Band.BATCH, Band.BATCH,
        Band.PRODUCTION, Band.MONITORING, Band.MONITORING]
    assert may_preempt(PRODUCTION, BATCH)
    assert may_preempt(BATCH + 1, BATCH)
    assert not may_preempt(PRODUCTION + 1, PRODUCTION)
    assert not may_preempt(MONITORING + 1, MONITORING)
    assert may_preempt(MONITORING, PRODUCTION + 999)
    assert {o["metadata"]["name"]: o["value"] for o in priority_class_objects()} == {
        "monitoring": MONITORING, "production": PRODUCTION, "batch": BATCH, "best-effort": 0}


def test_priority_class_name_of_a_band_without_admission() -> None:
    snapshot = cluster(node("a", cpu="1"), pods=(pod("low", cpu="1", priority=0,
                                                     node_name="a"),))
    by_name = pod("p", cpu="1", priorityClassName="production")
    assert victims(find_preemption(snapshot, by_name)) == ["default/low"]


def test_pod_affinity_limits_preemption_to_nodes_holding_the_partner() -> None:
    together = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "cache"}},
        "topologyKey": "kubernetes.io/hostname"}]}}
    snapshot = cluster(node("a", cpu="2"), node("b", cpu="2"), pods=(
        pod("cache", cpu="1", priority=BATCH + 20, labels={"app": "cache"}, node_name="a"),
        pod("filler-a", cpu="1", priority=0, node_name="a"),
        pod("filler-b", cpu="2", priority=0, node_name="b"),  # cheaper to evict, no cache
    ))
    result = find_preemption(snapshot, pod("p", cpu="1", priority=BATCH + 10,
                                           affinity=together))
    assert result.preemption is not None and result.preemption.node == "a"
    assert victims(result) == ["default/filler-a"]
    # As in Kubernetes: a partner of lower priority is never evicted for the pod
    # that wants to be next to it, so that node has no victims to offer.
    low_partner = cluster(node("a", cpu="2"), pods=(
        pod("cache", cpu="1", priority=0, labels={"app": "cache"}, node_name="a"),
        pod("filler", cpu="1", priority=0, node_name="a"),
    ))
    result = find_preemption(low_partner, pod("p", cpu="2", priority=BATCH + 10,
                                              affinity=together))
    assert result.preemption is None
    assert result.message == ("preemption: 0/1 nodes are available: "
                              "1 No preemption victims found for incoming pod.")
