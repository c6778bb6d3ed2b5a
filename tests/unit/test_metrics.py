"""API server metrics: verb/resource classification, the middleware's counters,
watch tracking, and the exposition."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from corral.api.auth import AuthMiddleware, TokenAuthenticator, ensure_admin_token
from corral.api.metrics import (
    ApiMetrics,
    MetricsMiddleware,
    RequestKind,
    classify,
    metrics_response,
)


@pytest.mark.parametrize(("method", "path", "query", "verb", "resource"), [
    ("GET", "/api/v1/namespaces/d/pods", "", "list", "pods"),
    ("GET", "/api/v1/pods", "limit=500", "list", "pods"),
    ("GET", "/api/v1/namespaces/d/pods", "watch=true&resourceVersion=7", "watch", "pods"),
    ("GET", "/api/v1/namespaces/d/pods", "watch=1", "watch", "pods"),
    ("GET", "/api/v1/namespaces/d/pods", "watch=false", "list", "pods"),
    ("GET", "/api/v1/namespaces/d/pods/web", "", "get", "pods"),
    ("GET", "/api/v1/namespaces/d/pods/web", "watch=true", "watch", "pods"),
    ("GET", "/api/v1/watch/namespaces/d/pods", "", "watch", "pods"),
    ("GET", "/apis/apps/v1/watch/deployments", "", "watch", "deployments"),
    ("POST", "/apis/apps/v1/namespaces/d/deployments", "", "create", "deployments"),
    ("PUT", "/apis/apps/v1/namespaces/d/deployments/web", "", "update", "deployments"),
    ("PATCH", "/apis/apps/v1/namespaces/d/deployments/web/scale", "", "patch",
     "deployments/scale"),
    ("PUT", "/api/v1/namespaces/d/pods/web/status", "", "update", "pods/status"),
    ("POST", "/api/v1/namespaces/d/pods/web/binding", "", "create", "pods/binding"),
    ("DELETE", "/api/v1/namespaces/d/pods/web", "", "delete", "pods"),
    ("DELETE", "/api/v1/namespaces/d/pods", "", "deletecollection", "pods"),
    ("GET", "/api/v1/namespaces/d", "", "get", "namespaces"),
    ("PUT", "/api/v1/namespaces/d/finalize", "", "update", "namespaces/finalize"),
    ("GET", "/api/v1/nodes", "", "list", "nodes"),
    ("GET", "/healthz", "", "get", ""),
    ("GET", "/apis/apps/v1", "", "get", ""),
    ("GET", "/api/v1/namespaces/d/made-up-things", "", "get", ""),
])
def test_requests_are_classified_as_kubernetes_verbs(
        method: str, path: str, query: str, verb: str, resource: str) -> None:
    kind = classify(method, path, query.encode())
    assert (kind.verb, kind.resource) == (verb, resource)


def test_watches_and_log_streams_are_long_running() -> None:
    assert classify("GET", "/api/v1/pods", b"watch=true").long_running
    assert classify("GET", "/api/v1/namespaces/d/pods/p/log", b"follow=true").long_running
    assert classify("GET", "/api/v1/pods", b"") == RequestKind("list", "pods", False)
    # a custom resource's watch (an operator's) is long-running too
    custom = classify("GET", "/apis/stable.example.com/v1/crontabs", b"watch=true")
    assert custom == RequestKind("watch", "", True)


async def _list_pods(request: Request) -> Response:
    return JSONResponse({"kind": "PodList", "items": []})


async def _create_pod(request: Request) -> Response:
    return JSONResponse({"kind": "Pod"}, status_code=201)


async def _crash(request: Request) -> Response:
    raise RuntimeError("boom")


def _tiny_app() -> Starlette:
    return Starlette(routes=[
        Route("/api/v1/namespaces/{ns}/pods", _list_pods, methods=["GET"]),
        Route("/api/v1/namespaces/{ns}/pods", _create_pod, methods=["POST"]),
        Route("/api/v1/nodes", _crash),
    ])


def _client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://corral")


def _requests(m: ApiMetrics, verb: str, resource: str, code: str) -> float:
    value = m.registry.get_sample_value(
        "apiserver_request_total", {"verb": verb, "resource": resource, "code": code})
    return value or 0.0


def _observed(m: ApiMetrics, verb: str, resource: str) -> float:
    value = m.registry.get_sample_value(
        "apiserver_request_duration_seconds_count", {"verb": verb, "resource": resource})
    return value or 0.0


async def test_requests_are_counted_by_verb_resource_and_code() -> None:
    m = ApiMetrics()
    async with _client(MetricsMiddleware(_tiny_app(), m)) as client:
        for _ in range(3):
            assert (await client.get("/api/v1/namespaces/d/pods")).status_code == 200
        assert (await client.post("/api/v1/namespaces/d/pods", json={})).status_code == 201
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/api/v1/nodes")).status_code == 500
    assert _requests(m, "list", "pods", "200") == 3
    assert _requests(m, "create", "pods", "201") == 1
    assert _requests(m, "get", "", "404") == 1
    assert _requests(m, "list", "nodes", "500") == 1
    assert _observed(m, "list", "pods") == 3
    assert _observed(m, "create", "pods") == 1


async def test_rejected_requests_are_counted_as_401(tmp_path: Path) -> None:
    m = ApiMetrics()
    token = ensure_admin_token(tmp_path)
    app = MetricsMiddleware(AuthMiddleware(_tiny_app(), TokenAuthenticator(tmp_path / "token")),
                            m)
    async with _client(app) as client:
        assert (await client.get("/api/v1/namespaces/d/pods")).status_code == 401
        ok = await client.get("/api/v1/namespaces/d/pods",
                              headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    assert _requests(m, "list", "pods", "401") == 1
    assert _requests(m, "list", "pods", "200") == 1


async def test_a_watch_is_counted_at_start_tracked_while_open_and_not_timed() -> None:
    m = ApiMetrics()
    release = asyncio.Event()

    async def watch(request: Request) -> Response:
        async def events() -> AsyncIterator[bytes]:
            yield b'{"type":"ADDED"}\n'
            await release.wait()
        return StreamingResponse(events())

    app = MetricsMiddleware(Starlette(routes=[Route("/api/v1/pods", watch)]), m)
    sent: asyncio.Queue[Message] = asyncio.Queue()
    task = asyncio.create_task(app(_get_scope("/api/v1/pods", b"watch=true"),
                                   _no_body_then_wait(), sent.put))
    assert (await asyncio.wait_for(sent.get(), 10))["status"] == 200
    assert (await asyncio.wait_for(sent.get(), 10))["body"] == b'{"type":"ADDED"}\n'
    assert _requests(m, "watch", "pods", "200") == 1
    assert m.registry.get_sample_value("apiserver_current_watchers", {"resource": "pods"}) == 1
    release.set()
    await task
    assert m.registry.get_sample_value("apiserver_current_watchers", {"resource": "pods"}) == 0
    assert _requests(m, "watch", "pods", "200") == 1
    assert _observed(m, "watch", "pods") == 0


async def test_a_cancelled_watch_leaves_the_gauge() -> None:
    m = ApiMetrics()

    async def forever(request: Request) -> Response:
        async def events() -> AsyncIterator[bytes]:
            yield b"\n"
            await asyncio.Event().wait()
        return StreamingResponse(events())

    app = MetricsMiddleware(Starlette(routes=[Route("/api/v1/pods", forever)]), m)
    sent: asyncio.Queue[Message] = asyncio.Queue()
    task = asyncio.create_task(app(_get_scope("/api/v1/pods", b"watch=1"),
                                   _no_body_then_wait(), sent.put))
    await asyncio.wait_for(sent.get(), 10)
    assert m.registry.get_sample_value("apiserver_current_watchers", {"resource": "pods"}) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert m.registry.get_sample_value("apiserver_current_watchers", {"resource": "pods"}) == 0


def test_exposition_has_the_metrics_and_the_store_revision() -> None:
    m = ApiMetrics()
    revision = [41]
    m.track_store_revision(lambda: revision[0])
    m.requests.labels("get", "pods", "200").inc()
    revision[0] = 42
    response = metrics_response(m)
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = bytes(response.body).decode()
    assert 'apiserver_request_total{code="200",resource="pods",verb="get"} 1.0' in text
    assert "corral_store_revision 42.0" in text
    for name in ("apiserver_request_duration_seconds", "apiserver_current_watchers"):
        assert f"# TYPE {name} " in text


async def test_metrics_endpoint_serves_its_own_registry() -> None:
    m = ApiMetrics()

    async def metrics(request: Request) -> Response:
        return metrics_response(m)

    app = MetricsMiddleware(Starlette(routes=[Route("/metrics", metrics)]), m)
    async with _client(app) as client:
        await client.get("/metrics")
        text = (await client.get("/metrics")).text
    assert 'apiserver_request_total{code="200",resource="",verb="get"} 1.0' in text


def _no_body_then_wait() -> Callable[[], Awaitable[Message]]:
    """An ASGI receive: an empty body, then nothing (a client keeping its connection)."""
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


def _get_scope(path: str, query: bytes) -> dict[str, object]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "", "headers": [],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 6443)}
