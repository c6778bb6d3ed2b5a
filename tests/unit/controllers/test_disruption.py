"""The disruption budget rules: the controller's status arithmetic and the
eviction's verdict, from tables (Kubernetes' disruption controller and eviction
REST are the reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral.api.errors import Forbidden, TooManyRequests
from corral.api.registry.eviction import charged, judge
from corral.controllers.disruption import compute, expected_and_desired
from corral.objects import Obj, rfc3339

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RS_UID = "rs-1"


def pod(name: str, *, ready: bool = True, deleting: bool = False, phase: str = "Running",
        owner: str | None = RS_UID, labels: dict[str, str] | None = None) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": "default",
                            "labels": labels if labels is not None else {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web", "uid": owner,
                                    "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def pdb(spec: Obj, status: Obj | None = None, generation: int = 1) -> Obj:
    return {"metadata": {"name": "web", "namespace": "default", "generation": generation,
                         "resourceVersion": "7"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
            "status": status or {}}


@pytest.mark.parametrize(("spec", "pods", "scale", "expected"), [
    ({"minAvailable": 2}, 3, 5, (3, 2)),             # an int counts the pods that exist
    ({"minAvailable": "50%"}, 3, 5, (5, 3)),         # a percentage of the controller's scale, up
    ({"maxUnavailable": 1}, 3, 4, (4, 3)),
    ({"maxUnavailable": "30%"}, 3, 4, (4, 2)),       # ceil(1.2) = 2 may be unavailable
    ({"maxUnavailable": 9}, 3, 4, (4, 0)),           # never below zero
    ({}, 2, 2, (2, 2)),
])
def test_expected_and_desired(spec: Obj, pods: int, scale: int,
                              expected: tuple[int, int]) -> None:
    selected = [pod(f"p{i}") for i in range(pods)]
    assert expected_and_desired(spec, selected, {RS_UID: scale}) == expected


def test_healthy_counts_ready_pods_not_deleting_and_not_recently_disrupted() -> None:
    pods = [pod("a"), pod("b"), pod("c", ready=False), pod("d", deleting=True), pod("e")]
    budget = pdb({"minAvailable": 1},
                 {"disruptedPods": {"e": rfc3339(NOW - timedelta(seconds=30)),
                                    "gone": rfc3339(NOW - timedelta(seconds=30)),
                                    "d": rfc3339(NOW - timedelta(seconds=30))}})
    result = compute(budget, pods, {RS_UID: 5}, NOW)
    status = result.status
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"]) \
        == (2, 1, 5)
    assert status["disruptionsAllowed"] == 1
    assert status["disruptedPods"] == {"e": rfc3339(NOW - timedelta(seconds=30))}
    assert result.recheck == NOW + timedelta(seconds=90)  # when e's entry expires
    assert status["conditions"][0]["reason"] == "SufficientPods"
    assert status["observedGeneration"] == 1


def test_an_expired_disruption_counts_the_pod_again() -> None:
    budget = pdb({"minAvailable": 1}, {"disruptedPods": {"a": rfc3339(NOW - timedelta(
        minutes=3))}})
    result = compute(budget, [pod("a"), pod("b")], {RS_UID: 2}, NOW)
    assert result.status["currentHealthy"] == 2 and "disruptedPods" not in result.status
    assert result.recheck is None


def test_pods_without_a_controller_fail_safe() -> None:
    result = compute(pdb({"maxUnavailable": 1}), [pod("a", owner=None)], {}, NOW)
    assert result.status["disruptionsAllowed"] == 0
    assert result.status["conditions"][0]["reason"] == "SyncFailed"


# ---- the eviction's verdict ------------------------------------------------------

def observed(allowed: int, healthy: int = 2, desired: int = 2, **extra: Any) -> Obj:
    return {"observedGeneration": 1, "disruptionsAllowed": allowed,
            "currentHealthy": healthy, "desiredHealthy": desired, **extra}


def test_no_budget_or_a_pod_with_nothing_to_protect_is_evicted_freely() -> None:
    blocking = pdb({"minAvailable": 5}, observed(0))
    assert judge(pod("a", labels={"app": "other"}), [blocking]).charge is None
    for idle in (pod("a", phase="Pending"), pod("a", phase="Succeeded"),
                 pod("a", deleting=True)):
        assert judge(idle, [blocking]).charge is None


def test_a_budget_with_room_is_charged() -> None:
    budget = pdb({"minAvailable": 1}, observed(1, healthy=2, desired=1))
    assert judge(pod("a"), [budget]).charge is budget
    after = charged(budget, "a")["status"]
    assert after["disruptionsAllowed"] == 0 and set(after["disruptedPods"]) == {"a"}
    assert after["conditions"][-1]["reason"] == "InsufficientPods"
    assert budget["status"]["disruptionsAllowed"] == 1  # the original is untouched


def test_a_spent_budget_refuses_with_kubernetes_words() -> None:
    with pytest.raises(TooManyRequests) as err:
        judge(pod("a"), [pdb({"minAvailable": 2}, observed(0))])
    assert err.value.message == ("Cannot evict pod as it would violate the pod's "
                                 "disruption budget.")
    assert err.value.causes[0].reason == "DisruptionBudget"
    assert err.value.causes[0].message == ("The disruption budget web needs 2 healthy pods "
                                           "and has 2 currently")


def test_an_unobserved_budget_refuses_until_the_controller_catches_up() -> None:
    with pytest.raises(TooManyRequests, match="disruption budget"):
        judge(pod("a"), [pdb({"minAvailable": 1}, observed(3), generation=2)])


def test_two_budgets_refuse_and_a_negative_budget_is_forbidden() -> None:
    one = pdb({"minAvailable": 1}, observed(1))
    with pytest.raises(TooManyRequests, match="more than one PodDisruptionBudget"):
        judge(pod("a"), [one, one])
    with pytest.raises(Forbidden):
        judge(pod("a"), [pdb({"minAvailable": 1}, observed(-1))])


@pytest.mark.parametrize(("policy", "healthy", "desired", "charged_budget"), [
    (None, 2, 2, False),               # IfHealthyBudget, budget met: free
    (None, 1, 2, True),                # budget not met: the unready pod is charged (and refused)
    ("AlwaysAllow", 0, 2, False),
])
def test_unready_pods(policy: str | None, healthy: int, desired: int,
                      charged_budget: bool) -> None:
    spec: Obj = {"minAvailable": desired}
    if policy:
        spec["unhealthyPodEvictionPolicy"] = policy
    budget = pdb(spec, observed(0, healthy=healthy, desired=desired))
    if charged_budget:
        with pytest.raises(TooManyRequests):
            judge(pod("a", ready=False), [budget])
    else:
        assert judge(pod("a", ready=False), [budget]).charge is None
