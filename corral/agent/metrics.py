"""The agent's Prometheus metrics, served on its own server's /metrics (as the
kubelet's), with the kubelet's names where it has one:

    kubelet_pod_start_duration_seconds                  first seen by this agent → Running
    kubelet_runtime_operations_total{operation_type}    runtime calls: start, stop, status,
    kubelet_runtime_operations_duration_seconds{...}    list, adopt, usage, remove
    kubelet_runtime_operations_errors_total{...}
    kubelet_running_pods                                pods with a worker on this node
    corral_agent_heartbeat_age_seconds                  since the node Lease was last renewed
    corral_agent_framework_direct_launches_total        framework tasks the Mesos master
                                                        launched here directly (not by
                                                        their Alloc's spec)
    corral_proxy_connections_total                      Service connections the user-space
    corral_proxy_active_connections                     proxy accepted / holds open now (with
                                                        --proxy-mode nftables the kernel
                                                        forwards them and they stay 0)

Gauges that mirror live state are read at scrape time from the running agent
(``AgentMetrics.bind``), so nothing is updated on the hot paths.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from corral.proxy.forwarder import PROXY_STATS

# The kubelet's buckets for pod start (seconds) and runtime operations.
POD_START_BUCKETS = (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360,
                     480, 600, 900, 1200, 1800, 2700, 3600)
OPERATION_BUCKETS = (0.005, 0.0125, 0.03125, 0.078125, 0.1953125, 0.48828125, 1.220703125,
                     3.0517578125, 7.62939453125, 19.073486328125, 47.6837158203125)


class AgentMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.pod_start = Histogram(
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from the agent seeing a pod for the first time to the pod "
            "starting to run.", buckets=POD_START_BUCKETS, registry=r)
        self.operations = Counter(
            "kubelet_runtime_operations_total", "Cumulative number of runtime operations by "
            "operation type.", ["operation_type"], registry=r)
        self.operation_duration = Histogram(
            "kubelet_runtime_operations_duration_seconds", "Duration in seconds of runtime "
            "operations, by operation type.", ["operation_type"], buckets=OPERATION_BUCKETS,
            registry=r)
        self.operation_errors = Counter(
            "kubelet_runtime_operations_errors_total", "Cumulative number of runtime operation "
            "errors by operation type.", ["operation_type"], registry=r)
        self.running_pods = Gauge("kubelet_running_pods", "Number of pods that have a running "
                                  "pod worker on this node.", registry=r)
        self.heartbeat_age = Gauge("corral_agent_heartbeat_age_seconds", "Seconds since this "
                                   "agent last renewed its node Lease.", registry=r)
        self.direct_launches = Counter(
            "corral_agent_framework_direct_launches", "Framework tasks the Mesos master "
            "launched on this node directly, ahead of their Alloc's spec.", registry=r)
        r.register(_ProxyCollector())
        ProcessCollector(registry=r)

    def bind(self, running_pods: Callable[[], int], heartbeat_age: Callable[[], float]) -> None:
        """Read the live gauges from the running agent at every scrape."""
        self.running_pods.set_function(lambda: float(running_pods()))
        self.heartbeat_age.set_function(heartbeat_age)


class _ProxyCollector(Collector):
    """The proxy counts connections in plain integers (a metric update per
    connection would cost the forwarder measurably); read them at scrape."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("corral_proxy_connections", "Service connections the "
                                  "proxy accepted.", value=PROXY_STATS.accepted)
        yield GaugeMetricFamily("corral_proxy_active_connections", "Service connections the "
                                "proxy holds open now.", value=PROXY_STATS.active)


AGENT_METRICS = AgentMetrics()

P = ParamSpec("P")
R = TypeVar("R")


def runtime_operation(name: str) -> Callable[[Callable[P, Awaitable[R]]],
                                             Callable[P, Coroutine[Any, Any, R]]]:
    """Count and time an async runtime method as ``operation_type=name`` (still a
    coroutine function, so the runtime keeps matching the Runtime protocol)."""
    # The labelled children once, not per call: labels() is a locked lookup that
    # costs more than the update itself.
    count = AGENT_METRICS.operations.labels(name)
    errors = AGENT_METRICS.operation_errors.labels(name)
    duration = AGENT_METRICS.operation_duration.labels(name)

    def wrap(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            count.inc()
            try:
                return await method(*args, **kwargs)
            except Exception:
                errors.inc()
                raise
            finally:
                duration.observe(time.perf_counter() - started)
        return timed
    return wrap
