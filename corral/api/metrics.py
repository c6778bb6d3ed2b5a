"""Prometheus metrics for the API server, on a registry of its own.

    apiserver_request_total{verb,resource,code}          every request, counted when
                                                         its response starts
    apiserver_request_duration_seconds{verb,resource}    latency; long-running requests
                                                         (watch, log, exec) left out
    apiserver_current_watchers{resource}                 watches open right now
    corral_store_revision                                read from a callback at scrape

Verbs are Kubernetes verbs (get list watch create update patch delete
deletecollection); resources are plurals with the subresource ("pods/status").
A path that names no served resource (discovery, /healthz, a typo) is counted
with resource "" so a client cannot grow the label set at will.

Components that run inside the master (scheduler, controllers' work queues)
keep registries of their own; whoever starts them ``include``s those, and
/metrics shows them beside the API's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.process_collector import ProcessCollector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.errors import NotFound
from corral.api.paths import Target, parse_resource_path

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0,
                   10.0, 30.0, 60.0)
LONG_RUNNING_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})

_ITEM_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
               "POST": "create"}
_COLLECTION_VERBS = {"GET": "list", "POST": "create", "DELETE": "deletecollection",
                     "PUT": "update", "PATCH": "patch"}


class ApiMetrics:
    """The API server's metrics and the registry they are exposed from."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request_total", "Requests, by Kubernetes verb, resource and HTTP code.",
            ["verb", "resource", "code"], registry=self.registry)
        self.latency = Histogram(
            "apiserver_request_duration_seconds",
            "Time to answer a request (long-running requests excluded).",
            ["verb", "resource"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.watchers = Gauge(
            "apiserver_current_watchers", "Watch requests open now, by resource.",
            ["resource"], registry=self.registry)
        self.store_revision = Gauge(
            "corral_store_revision", "The store's current global revision.",
            registry=self.registry)
        self.fenced_writes = Counter(
            "corral_apiserver_fenced_writes_total",
            "Writes of leader-elected components, by leader Lease, holder, term and "
            "result (accepted, or refused: the term was over).",
            ["lease", "holder", "term", "result"], registry=self.registry)
        self.encryption_config = Gauge(
            "apiserver_encryption_config_controller_last_config_info",
            "The encryption provider config in force (1 for its hash), as kube-apiserver "
            "reports it; `corral secrets rotate-key` waits for every master's.",
            ["apiserver_id_hash", "hash"], registry=self.registry)
        self.transformations = Counter(
            "apiserver_storage_transformation_operations_total",
            "Values sealed (to_storage) and opened (from_storage) by the encryption "
            "providers, by provider prefix and status (Failed: no configured key opens it).",
            ["transformation_type", "transformer_prefix", "status"], registry=self.registry)
        self.audit_events = Counter(
            "apiserver_audit_event_total", "Audit events generated and sent to the audit log.",
            registry=self.registry)
        self.audit_errors = Counter(
            "apiserver_audit_error_total", "Audit events that could not be written (dropped "
            "when the queue stayed full, or the disk failed), by backend.",
            ["plugin"], registry=self.registry)
        ProcessCollector(registry=self.registry)
        self.included: list[CollectorRegistry] = []

    def include(self, registry: CollectorRegistry) -> None:
        """Expose ``registry``'s families on /metrics too (once)."""
        if all(r is not registry for r in self.included):
            self.included.append(registry)

    def exposition(self) -> bytes:
        return b"".join(generate_latest(r) for r in (self.registry, *self.included))

    def encryption_config_loaded(self, server_id: str, digest: str) -> None:
        self.encryption_config.clear()
        self.encryption_config.labels(server_id, digest).set(1)

    def track_store_revision(self, source: Callable[[], float]) -> None:
        """Read the store revision from ``source`` at every scrape. ``source`` must be
        cheap, synchronous and not raise (e.g. return the last revision the
        server saw)."""
        self.store_revision.set_function(source)


API_METRICS = ApiMetrics()


def metrics_response(metrics: ApiMetrics = API_METRICS) -> Response:
    """The text exposition of ``metrics``, for GET /metrics."""
    return Response(metrics.exposition(),
                    headers={"content-type": CONTENT_TYPE_PLAIN_0_0_4})


@dataclass(frozen=True)
class RequestKind:
    verb: str
    resource: str  # "pods", "pods/status"; "" for non-resource paths
    long_running: bool  # kept out of the latency histogram

    @property
    def is_watch(self) -> bool:
        return self.verb == "watch"


def classify(method: str, path: str, query_string: bytes = b"") -> RequestKind:
    """The Kubernetes verb and resource of a request."""
    method = method.upper()
    path, legacy_watch = _strip_watch_prefix(path)
    try:
        target = parse_resource_path(path)
    except NotFound:
        # Not a built-in kind: a custom resource (the CRDs' table is the server's,
        # not this module's) or no resource at all. Its watches still stay out of
        # the latency histogram: an operator's watch lasts minutes.
        watch = method == "GET" and (legacy_watch or _watch_flag(query_string))
        return RequestKind("watch" if watch else _ITEM_VERBS.get(method, method.lower()),
                           "", watch)
    verbs = _COLLECTION_VERBS if target.name is None else _ITEM_VERBS
    verb = verbs.get(method, method.lower())
    if method == "GET" and (legacy_watch or _watch_flag(query_string)):
        verb = "watch"
    resource = _resource_label(target)
    long_running = verb == "watch" or target.subresource in LONG_RUNNING_SUBRESOURCES
    return RequestKind(verb, resource, long_running)


def _strip_watch_prefix(path: str) -> tuple[str, bool]:
    """/api/v1/watch/pods and /apis/g/v/watch/... are the old spelling of ?watch=1."""
    parts = path.split("/")
    index = {"api": 3, "apis": 4}.get(parts[1]) if len(parts) > 1 else None
    if index is not None and len(parts) > index + 1 and parts[index] == "watch":
        return "/".join(parts[:index] + parts[index + 1:]), True
    return path, False


def _watch_flag(query_string: bytes) -> bool:
    values = parse_qs(query_string.decode("latin-1")).get("watch", [])
    return bool(values) and values[-1].lower() in ("1", "true")


def _resource_label(target: Target) -> str:
    plural = target.resource.plural
    return f"{plural}/{target.subresource}" if target.subresource else plural


class MetricsMiddleware:
    """Pure ASGI, so a watch stream is neither buffered nor held up by counting."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics = API_METRICS) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = classify(scope["method"], scope["path"], scope.get("query_string", b""))
        await _Observation(self.metrics, kind).run(self.app, scope, receive, send)


class _Observation:
    """One request's trip through the app: counts it, times it, tracks its watch."""

    def __init__(self, metrics: ApiMetrics, kind: RequestKind) -> None:
        self.metrics = metrics
        self.kind = kind
        self.counted = False

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        kind = self.kind

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not self.counted:
                self._count(int(message["status"]))
            await send(message)

        started = time.perf_counter()
        watchers = self.metrics.watchers.labels(kind.resource) if kind.is_watch else None
        if watchers is not None:
            watchers.inc()
        try:
            await app(scope, receive, counting_send)
        except Exception:
            if not self.counted:
                self._count(500)  # the server will answer 500 for an escaped error
            raise
        finally:
            if watchers is not None:
                watchers.dec()
        if self.counted and not kind.long_running:
            self.metrics.latency.labels(kind.verb, kind.resource).observe(
                time.perf_counter() - started)

    def _count(self, status: int) -> None:
        self.counted = True
        self.metrics.requests.labels(self.kind.verb, self.kind.resource, str(status)).inc()
