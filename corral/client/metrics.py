"""Prometheus metrics of API clients (work queues), and how a component process
exposes its registries.

Each component keeps its metrics on a registry of its own (the API server's in
corral/api/metrics.py, the scheduler's, the agent's, the work queues' here), so
a process shows exactly the families of the components it runs:

    corral master        API + scheduler + work queues   on the API's /metrics
    corral scheduler     scheduler                        --metrics-listen HOST:PORT
    corral controllers   work queues                      --metrics-listen HOST:PORT
    corral agent         agent (kubelet_*, proxy)         its own server's /metrics

Work-queue families are client-go's (k8s.io/client-go/util/workqueue), labelled
by the queue's name, which for a controller is the controller's name:

    workqueue_depth{name}                       keys waiting now
    workqueue_adds_total{name}                  keys added
    workqueue_retries_total{name}               rate-limited re-adds (failures)
    workqueue_queue_duration_seconds{name}      from add to a worker's get()
    workqueue_work_duration_seconds{name}       from get() to done()
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# client-go's workqueue buckets: 10 ns .. 10 s, by tens.
WORKQUEUE_BUCKETS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class WorkQueueMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.depth = Gauge("workqueue_depth", "Current depth of the work queue.", ["name"],
                           registry=self.registry)
        self.adds = Counter("workqueue_adds_total", "Adds handled by the work queue.",
                            ["name"], registry=self.registry)
        self.retries = Counter("workqueue_retries_total", "Retries handled by the work queue.",
                               ["name"], registry=self.registry)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in the work queue before being requested.",
            ["name"], buckets=WORKQUEUE_BUCKETS, registry=self.registry)
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from the work queue takes.",
            ["name"], buckets=WORKQUEUE_BUCKETS, registry=self.registry)


WORKQUEUE_METRICS = WorkQueueMetrics()


class _Union(Collector):
    """Several registries as one, for one exposition."""

    def __init__(self, registries: Iterable[CollectorRegistry]) -> None:
        self.registries = list(registries)

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            yield from registry.collect()


def union(registries: Iterable[CollectorRegistry]) -> CollectorRegistry:
    """A registry that exposes every family of ``registries``."""
    merged = CollectorRegistry(auto_describe=False)
    merged.register(_Union(registries))
    return merged


class MetricsServer:
    """Plain-HTTP /metrics for a component process (``--metrics-listen``), on
    prometheus_client's own threaded server: scrapes never wait for the event loop."""

    def __init__(self, host: str, port: int, registries: Iterable[CollectorRegistry]) -> None:
        server, thread = start_http_server(port, host, registry=union(registries))
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port = int(server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)
