"""The DaemonSet's pure planning: which nodes fit, what to create and delete,
how a rolling update paces itself, and the status counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.controllers.daemonset.plan import (
    NodeFit,
    Rollout,
    daemon_status,
    node_fit,
    plan,
    rollout_of,
    target_node,
    with_node_affinity,
)
from corral.controllers.history import REVISION_HASH

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FIT = NodeFit(True, True)
ROLL = Rollout(False, 1, 0)


def node(name: str, labels: dict[str, str] | None = None, **node_spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": node_spec}


def pod(name: str, node_name: str, hash_: str = "new", ready: bool = True,
        phase: str = "Running", created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": name, "labels": {REVISION_HASH: hash_},
                         "creationTimestamp": created},
            "spec": {"nodeName": node_name},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False"}]}}


def template(**pod_spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "d"}}, "spec": pod_spec}


def test_node_selector_affinity_and_taints_decide_where_a_daemon_runs() -> None:
    assert node_fit(template(), node("a")) == FIT
    assert not node_fit(template(nodeSelector={"disk": "ssd"}), node("a")).should_run
    assert node_fit(template(nodeSelector={"disk": "ssd"}), node("a", {"disk": "ssd"})) == FIT
    gpu_only = template(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "gpus", "operator": "Gt", "values": ["1"]}]}]}}})
    assert node_fit(gpu_only, node("a", {"gpus": "4"})) == FIT
    assert node_fit(gpu_only, node("a", {"gpus": "1"})) == NodeFit(False, False)
    # NoSchedule: no new pod, an existing one stays; NoExecute: neither.
    no_schedule = node("a", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    assert node_fit(template(), no_schedule) == NodeFit(False, True)
    no_execute = node("a", taints=[{"key": "k", "effect": "NoExecute"}])
    assert node_fit(template(), no_execute) == NodeFit(False, False)
    tolerating = template(tolerations=[{"key": "k", "operator": "Exists"}])
    assert node_fit(tolerating, no_execute) == FIT


def test_cordoned_and_not_ready_nodes_still_run_daemons() -> None:
    cordoned = node("a", unschedulable=True, taints=[
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])
    assert node_fit(template(), cordoned) == FIT


def test_daemon_pods_are_pinned_by_affinity_and_tolerate_the_cordon() -> None:
    pinned = with_node_affinity({"containers": [], "tolerations": [
        {"key": "x", "operator": "Exists"}]}, "node-b")
    assert target_node({"spec": pinned}) == "node-b"
    keys = [t["key"] for t in pinned["tolerations"]]
    assert keys[0] == "x" and "node.kubernetes.io/unschedulable" in keys


def test_a_fitting_node_without_a_pod_gets_one_and_a_gone_node_loses_its_pod() -> None:
    stale = pod("d-old", "gone")
    result = plan({"a": FIT, "b": FIT}, {"a": [pod("d-a", "a")], "gone": [stale]}, "new",
                  ROLL, 0, NOW)
    assert result.create == ["b"] and result.delete == [stale]


def test_failed_pods_are_replaced_duplicates_trimmed_and_terminating_awaited() -> None:
    failed = pod("d-f", "a", phase="Failed")
    first, second = pod("d-1", "b", created="2026-01-01T00:00:00Z"), \
        pod("d-2", "b", created="2026-01-01T00:00:05Z")
    going = pod("d-c", "c")
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    result = plan({"a": FIT, "b": FIT, "c": FIT}, {"a": [failed], "b": [first, second],
                                                   "c": [going]}, "new", ROLL, 0, NOW)
    assert result.create == ["a"]  # not "c": its old pod is still terminating
    assert result.delete == [failed, second]


def test_rolling_update_keeps_within_max_unavailable() -> None:
    pods = {n: [pod(f"d-{n}", n, hash_="old")] for n in "abcd"}
    fits = dict.fromkeys("abcd", FIT)
    assert [p["metadata"]["name"] for p in plan(fits, pods, "new", ROLL, 0, NOW).delete] == [
        "d-a"]
    two = plan(fits, pods, "new", Rollout(False, 2, 0), 0, NOW)
    assert len(two.delete) == 2
    # One node already down: nothing more may go, except the unavailable old pod itself.
    pods["c"] = [pod("d-c", "c", hash_="old", ready=False)]
    assert [p["metadata"]["name"] for p in plan(fits, pods, "new", ROLL, 0, NOW).delete] == [
        "d-c"]
    # OnDelete: old pods stay until someone deletes them.
    assert plan(fits, pods, "new", Rollout(True, 1, 0), 0, NOW).delete == []


def test_max_surge_starts_the_new_pod_before_retiring_the_old() -> None:
    fits = {"a": FIT, "b": FIT}
    old_a, old_b = pod("d-a", "a", hash_="old"), pod("d-b", "b", hash_="old")
    surge = Rollout(False, 0, 1)
    first = plan(fits, {"a": [old_a], "b": [old_b]}, "new", surge, 0, NOW)
    assert first.create == ["a"] and first.delete == []
    starting = pod("d-a2", "a", ready=False)
    assert plan(fits, {"a": [old_a, starting], "b": [old_b]}, "new", surge, 0, NOW).delete == []
    serving = pod("d-a2", "a")
    done = plan(fits, {"a": [old_a, serving], "b": [old_b]}, "new", surge, 0, NOW)
    assert done.delete == [old_a] and done.create == []


def test_rollout_resolves_percentages_against_desired() -> None:
    ds = {"spec": {"updateStrategy": {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxUnavailable": "25%"}}}}
    assert rollout_of(ds, 10) == Rollout(False, 3, 0)
    zero = {"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0,
                                                          "maxSurge": 0}}}}
    assert rollout_of(zero, 10).max_unavailable == 1


def test_status_counts_nodes() -> None:
    ds = {"metadata": {"generation": 3}, "spec": {}}
    fits = {"a": FIT, "b": FIT, "c": FIT, "d": NodeFit(False, True)}
    pods = {"a": [pod("d-a", "a")], "b": [pod("d-b", "b", hash_="old", ready=False)],
            "d": [pod("d-d", "d")]}
    assert daemon_status(ds, fits, pods, "new", NOW) == {
        "desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberMisscheduled": 1,
        "numberReady": 1, "numberAvailable": 1, "numberUnavailable": 2,
        "updatedNumberScheduled": 1, "observedGeneration": 3}
