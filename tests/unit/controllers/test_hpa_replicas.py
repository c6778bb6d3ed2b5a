"""The HPA's replica calculator, from tables (Kubernetes' replica_calculator.go and
its tests are the reference): ratio and tolerance, unready, missing and ignored
pods, cpu's initialization period, AverageValue targets, the errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral.controllers.autoscaling.replicas import (
    MetricError,
    PodMetric,
    raw_resource_replicas,
    resource_replicas,
)
from corral.objects import Obj, rfc3339

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=1)


def pod(name: str, *, cpu: str | None = "1", memory: str = "100Mi", phase: str = "Running",
        ready: bool = True, started: datetime = LONG_AGO, ready_since: datetime = LONG_AGO,
        deleting: bool = False) -> Obj:
    requests: dict[str, Any] = {"memory": memory}
    if cpu is not None:
        requests["cpu"] = cpu
    meta: Obj = {"name": name, "namespace": "default"}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    return {"metadata": meta,
            "spec": {"containers": [{"name": "app", "resources": {"requests": requests}}]},
            "status": {"phase": phase, "startTime": rfc3339(started), "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": rfc3339(ready_since)}]}}


def usage(**millis: int) -> dict[str, PodMetric]:
    return {name: PodMetric(value, NOW, timedelta(seconds=10)) for name, value in millis.items()}


# Not Ready yet, within cpu's initialization period: unready.
STARTING = pod("a", ready=False, started=NOW - timedelta(seconds=60),
               ready_since=NOW - timedelta(seconds=60))


def test_scale_up_from_utilization() -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    proposal = resource_replicas(3, 30, "cpu", pods, usage(a=300, b=500, c=700), NOW)
    assert (proposal.replicas, proposal.utilization, proposal.raw) == (5, 50, 500)


def test_scale_down_from_utilization() -> None:
    pods = [pod(n) for n in "abcde"]
    proposal = resource_replicas(5, 50, "cpu", pods,
                                 usage(a=100, b=300, c=500, d=250, e=250), NOW)
    assert (proposal.replicas, proposal.utilization) == (3, 28)


def test_within_tolerance_keeps_the_current_count() -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    proposal = resource_replicas(3, 100, "cpu", pods, usage(a=1050, b=1030, c=1020), NOW)
    assert (proposal.replicas, proposal.utilization) == (3, 103)
    beyond = resource_replicas(3, 100, "cpu", pods, usage(a=1200, b=1200, c=1200), NOW)
    assert beyond.replicas == 4  # ratio 1.2 → ceil(3.6)


def test_unready_pods_count_as_idle_on_a_scale_up() -> None:
    pods = [STARTING, pod("b"), pod("c")]
    proposal = resource_replicas(3, 30, "cpu", pods, usage(a=300, b=500, c=700), NOW)
    # ready pods alone: 60% → ratio 2; with the unready one at 0: 40% → ceil(1.33·3)
    assert (proposal.replicas, proposal.utilization) == (4, 60)


def test_unready_pods_are_left_out_of_a_scale_down() -> None:
    pods = [STARTING, pod("b"), pod("c")]
    proposal = resource_replicas(3, 50, "cpu", pods, usage(a=900, b=100, c=100), NOW)
    assert (proposal.replicas, proposal.utilization) == (1, 10)


def test_pending_deleting_and_failed_pods() -> None:
    pods = [pod("a"), pod("b", phase="Pending"), pod("c", deleting=True),
            pod("d", phase="Failed")]
    proposal = resource_replicas(4, 50, "cpu", pods, usage(a=1000, c=0, d=0), NOW)
    # only a counts: 100% → ratio 2, the Pending one at 0 → (1000+0)/2000 = 50% → keep 4
    assert proposal.replicas == 4


def test_missing_metrics_on_a_scale_down_count_as_full_request() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    proposal = resource_replicas(4, 50, "cpu", pods, usage(a=100, b=100, c=100), NOW)
    # with d at 100% of its request: (300+1000)/4000 = 32% → ceil(0.64·4) = 3
    assert (proposal.replicas, proposal.utilization) == (3, 10)


def test_missing_metrics_on_a_scale_up_count_as_idle() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    proposal = resource_replicas(4, 50, "cpu", pods, usage(a=1000, b=1000, c=1000), NOW)
    # with d at 0: 3000/4000 = 75% → ceil(1.5·4) = 6
    assert (proposal.replicas, proposal.utilization) == (6, 100)


def test_missing_metrics_that_would_turn_the_direction_keep_the_count() -> None:
    pods = [pod("a"), pod("b")]
    # a alone: 55% of target 50 → up; b missing at 0 → 27% → down: keep 2
    assert resource_replicas(2, 50, "cpu", pods, usage(a=550), NOW).replicas == 2


def test_cpu_of_a_pod_just_ready_waits_one_metric_window() -> None:
    fresh = pod("a", started=NOW - timedelta(seconds=40), ready_since=NOW - timedelta(seconds=5))
    settled = pod("b", started=NOW - timedelta(seconds=40),
                  ready_since=NOW - timedelta(seconds=30))
    proposal = resource_replicas(2, 50, "cpu", [fresh, settled], usage(a=2000, b=250), NOW)
    # a's sample (10 s window) began before it was ready: unready; b alone is at 25%
    assert proposal.utilization == 25
    # memory has no initialization period: both count
    mem = resource_replicas(2, 50, "memory", [fresh, settled],
                            usage(a=100 * 2**20 * 1000, b=50 * 2**20 * 1000), NOW)
    assert mem.utilization == 75


def test_a_never_ready_pod_past_initialization_is_unready() -> None:
    never = pod("a", ready=False, started=NOW - timedelta(minutes=10),
                ready_since=NOW - timedelta(minutes=10))
    proposal = resource_replicas(2, 50, "cpu", [never, pod("b")], usage(a=1000, b=500), NOW)
    assert proposal.utilization == 50


def test_average_value_targets() -> None:
    mi = 2**20 * 1000  # a MiB in milli-bytes
    pods = [pod("a"), pod("b")]
    proposal = raw_resource_replicas(2, 100 * mi, "memory", pods,
                                     usage(a=250 * mi, b=150 * mi), NOW)
    assert (proposal.replicas, proposal.raw, proposal.utilization) == (4, 200 * mi, None)
    within = raw_resource_replicas(2, 100 * mi, "memory", pods, usage(a=105 * mi, b=100 * mi),
                                   NOW)
    assert within.replicas == 2


@pytest.mark.parametrize(("pods", "metrics", "message"), [
    ([], usage(a=1), "no pods returned by selector while calculating replica count"),
    ([pod("a", phase="Pending")], usage(a=1),
     "did not receive metrics for targeted pods (pods might be unready)"),
    ([pod("a", cpu=None)], usage(a=1), "missing request for cpu in container app of Pod a"),
    ([pod("a", cpu="0")], usage(b=1), "no metrics returned matched known pods"),
])
def test_errors(pods: list[Obj], metrics: dict[str, PodMetric], message: str) -> None:
    with pytest.raises(MetricError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resource_replicas(1, 50, "cpu", pods, metrics, NOW)
