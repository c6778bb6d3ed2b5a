"""The scheduler's Prometheus metrics, with kube-scheduler's names and labels:

    scheduler_schedule_attempts_total{result,profile}            attempts by result:
                                                                 scheduled, unschedulable, error
    scheduler_scheduling_attempt_duration_seconds{result,profile}  one attempt: the decision
                                                                 (and, when none fits, preemption
                                                                 and the status write)
    scheduler_pod_scheduling_duration_seconds{attempts}          first seen pending → bound
    scheduler_preemption_attempts_total                          preemptions started
    scheduler_preemption_victims                                 victims per preemption
    scheduler_pending_pods{queue}                                active | unschedulable (parked
                                                                 in back-off), read at scrape

``PodTimes`` keeps when each pending pod was first seen and how many attempts
it took, so the end-to-end histogram can be observed when it is bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PROFILE = "default-scheduler"
# kube-scheduler's buckets: exponential from 1 ms (attempt) / 10 ms (pod), factor 2.
ATTEMPT_BUCKETS = tuple(0.001 * 2 ** i for i in range(15))
POD_BUCKETS = tuple(0.01 * 2 ** i for i in range(20))
VICTIM_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


class SchedulerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.attempts = Counter(
            "scheduler_schedule_attempts_total",
            "Number of attempts to schedule pods, by the result.",
            ["result", "profile"], registry=self.registry)
        self.attempt_duration = Histogram(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding decision).",
            ["result", "profile"], buckets=ATTEMPT_BUCKETS, registry=self.registry)
        self.pod_duration = Histogram(
            "scheduler_pod_scheduling_duration_seconds",
            "E2e latency for a pod being scheduled, from first seen pending to bound.",
            ["attempts"], buckets=POD_BUCKETS, registry=self.registry)
        self.preemptions = Counter(
            "scheduler_preemption_attempts_total", "Total preemption attempts in the cluster.",
            registry=self.registry)
        self.victims = Histogram(
            "scheduler_preemption_victims", "Number of selected preemption victims.",
            buckets=VICTIM_BUCKETS, registry=self.registry)
        self.pending = Gauge(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type: active or unschedulable.",
            ["queue"], registry=self.registry)
        self._by_result: dict[str, tuple[Counter, Histogram]] = {}

    def attempt(self, result: str, seconds: float) -> None:
        children = self._by_result.get(result)
        if children is None:  # labels() is a locked lookup: once per result
            children = (self.attempts.labels(result, PROFILE),
                        self.attempt_duration.labels(result, PROFILE))
            self._by_result[result] = children
        children[0].inc()
        children[1].observe(seconds)

    def preempted(self, victims: int) -> None:
        self.preemptions.inc()
        self.victims.observe(victims)

    def watch_queue(self, active: Callable[[], int], parked: Callable[[], int]) -> None:
        """Read the queue depth from the running scheduler's queue at every scrape."""
        self.pending.labels("active").set_function(active)
        self.pending.labels("unschedulable").set_function(parked)


SCHEDULER_METRICS = SchedulerMetrics()


class PodTimes:
    """When each pending pod was first seen, and its attempts, until it is bound."""

    def __init__(self, metrics: SchedulerMetrics = SCHEDULER_METRICS) -> None:
        self.metrics = metrics
        self._first_seen: dict[str, float] = {}
        self._attempts: dict[str, int] = {}

    def seen(self, key: str) -> None:
        self._first_seen.setdefault(key, time.monotonic())

    def attempted(self, key: str) -> None:
        self._attempts[key] = self._attempts.get(key, 0) + 1

    def bound(self, key: str) -> None:
        first = self._first_seen.pop(key, None)
        attempts = self._attempts.pop(key, 1)
        if first is not None:
            self.metrics.pod_duration.labels(str(min(attempts, 15))).observe(
                time.monotonic() - first)

    def forget(self, key: str) -> None:
        self._first_seen.pop(key, None)
        self._attempts.pop(key, None)
