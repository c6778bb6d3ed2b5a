"""The API server's ASGI application: routing, error mapping, auth and metrics.

    request → MetricsMiddleware → AuditMiddleware (audit/, when on) → AuthMiddleware
              → AuditUser → ImpersonationMiddleware
              → AuthorizationMiddleware (RBAC: corral/api/rbac.py)
              → NodeRestrictionMiddleware (a node's credential: its own objects)
              → FairnessMiddleware → dispatch
        /healthz /readyz[/check] /livez[/check]    Health (health.py)
        /version /metrics
        /ui/...                                   the dashboard (corral/ui/), if given
        /api /apis /api/v1 /apis/{g}[/{v}]        discovery
        /openapi/v2, /openapi/v3[...]             OpenAPI
        /apis/authentication.k8s.io/v1/self*, /apis/authorization.k8s.io/v1/self*
                                                  ReviewHandler → the Authorizer
        /apis/metrics.k8s.io/v1beta1/...          ResourceMetrics → the agents' usage
        /api/v1/nodes/{name}/proxy/{path}         NodeProxy → the node's agent
        .../pods|services/{name}/proxy/{path}     ProxyHandler → the pod's host port
        .../pods/{name}/exec|attach|portforward   StreamRelay (websocket) → the agent
        everything else                           ResourceHandler → Registry → Store
                                                  (pods/{name}/log → the agent)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp

from corral.api import fencing
from corral.api.audit.middleware import AuditMiddleware, AuditUser
from corral.api.audit.policy import Policy
from corral.api.audit.sink import AuditLog
from corral.api.auth import REQUESTER, AuthMiddleware, TokenAuthenticator, User
from corral.api.authz import AllowAuthenticated, AuthorizationMiddleware, Authorizer
from corral.api.errors import APIError, NotFound, ServiceUnavailable
from corral.api.fairness import MAX_REQUESTS_INFLIGHT, FairnessMiddleware, lanes_for
from corral.api.fencing import FENCE_HEADER, Fence
from corral.api.handlers.discovery import (
    is_discovery_path,
    serve_discovery,
    serve_openapi,
    version,
)
from corral.api.handlers.node_proxy import NODE_PROXY_PATH
from corral.api.handlers.oidc import CONFIGURATION_PATH, JWKS_PATH, IssuerDiscovery
from corral.api.handlers.proxy import PROXY_PATH, ProxyHandler
from corral.api.handlers.resource_metrics import ResourceMetrics, SummaryFetch, is_metrics_path
from corral.api.handlers.resources import LogHandler, ResourceHandler
from corral.api.handlers.responses import status_response
from corral.api.handlers.reviews import REVIEWS, ReviewHandler, TokenCheck
from corral.api.handlers.streams import STREAM_PATH, StreamRelay, unknown_websocket
from corral.api.handlers.token_request import TOKEN_PATH, TokenRequests
from corral.api.health import Health
from corral.api.impersonation import ImpersonationMiddleware
from corral.api.metrics import MetricsMiddleware, metrics_response
from corral.api.node_restriction import NodeRestrictionMiddleware
from corral.api.paths import STORE_STATUS_PATH
from corral.api.registry import Registry
from corral.api.session import SessionCookie
from corral.store.errors import StoreUnavailable

# What anyone may read: kube-apiserver lets system:public-info-viewer (every
# client) see health (each check too) and version. kr8s asks /version/ (trailing
# slash); kube-apiserver answers both.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/version", "/version/"})
OPEN_PREFIXES = ("/readyz/", "/livez/")

Handler = Callable[[Request], Awaitable[Response]]
# (request, node name, path below .../proxy) → the agent's answer
NodeProxyHandler = Callable[[Request, str, str], Awaitable[Response]]


def _guard(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except APIError as err:
            return status_response(err)
        except StoreUnavailable as err:  # etcd down or without quorum: retry later
            return status_response(ServiceUnavailable(f"the storage is unavailable: {err}",
                                                      retry_after=1))

    return guarded


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _to_ui(request: Request) -> Response:
    return RedirectResponse("/ui/", status_code=308)


async def _metrics(request: Request) -> Response:
    return metrics_response()


def build_app(
    registry: Registry,
    authenticator: TokenAuthenticator | None,
    *,
    logs: LogHandler | None = None,
    nodes: NodeProxyHandler | None = None,
    streams: StreamRelay | None = None,
    proxy: ProxyHandler | None = None,
    health: Health | None = None,
    max_requests_inflight: int = MAX_REQUESTS_INFLIGHT,
    ui: ASGIApp | None = None,
    session: SessionCookie | None = None,
    store_status: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    authorizer: Authorizer | None = None,
    summaries: SummaryFetch | None = None,
    token_requests: TokenRequests | None = None,
    issuer_discovery: IssuerDiscovery | None = None,
    tokens: TokenCheck | None = None,
    audit: tuple[Policy, AuditLog] | None = None,
) -> ASGIApp:
    """``ui`` is served under /ui/ (open: it is the page, its data comes through the
    API); ``session`` lets API requests authenticate with its cookie."""
    resources = ResourceHandler(registry, logs)
    authorizer = authorizer or AllowAuthenticated()
    reviews = ReviewHandler(authorizer, tokens)
    metrics = ResourceMetrics(registry, summaries) if summaries is not None else None

    async def dispatch(request: Request) -> Response:
        fence = request.headers.get(FENCE_HEADER)
        token = fencing.CURRENT.set(Fence.parse(fence) if fence else None)
        requester = REQUESTER.set(request.scope.get("user"))
        try:
            return await route(request)
        finally:
            REQUESTER.reset(requester)
            fencing.CURRENT.reset(token)

    async def route(request: Request) -> Response:
        path = request.url.path
        if path.startswith("/openapi/"):
            return await serve_openapi(request, registry.served)
        proxied = NODE_PROXY_PATH.match(path) if nodes is not None else None
        if proxied is not None and nodes is not None:
            return await nodes(request, proxied.group(1), proxied.group(2) or "/")
        review = _review_kind(path)
        if review is not None:
            return await reviews(request, *review)
        token_request = TOKEN_PATH.match(path) if token_requests is not None else None
        if token_request is not None and token_requests is not None:
            return await token_requests(request, *token_request.group(1, 2))
        if metrics is not None and is_metrics_path(path):
            return await metrics(request)
        to_pod = PROXY_PATH.match(path) if proxy is not None else None
        if to_pod is not None and proxy is not None:
            namespace, plural, name = to_pod.group(1, 2, 3)
            return await proxy(request, namespace, plural, name, to_pod.group(4) or "")
        stream = STREAM_PATH.match(path) if streams is not None else None
        if stream is not None and streams is not None:
            return await streams.http(request, *stream.group(1, 2, 3))
        if path.startswith(("/api/", "/apis/")) or path in ("/api", "/apis"):
            if is_discovery_path(path):
                return await serve_discovery(request, registry.served)
            return await resources(request)
        raise NotFound(f"the server could not find the requested resource (path {path})")

    health = health or Health(registry)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes: list[BaseRoute] = [
        Route("/healthz", _ok),
        Route("/livez", health.livez), Route("/livez/{check:path}", health.livez),
        Route("/readyz", health.readyz), Route("/readyz/{check:path}", health.readyz),
        Route("/version", _guard(version)), Route("/version/", _guard(version)),
        Route("/metrics", _metrics),
    ]
    if issuer_discovery is not None:
        routes += [Route(path, _guard(handler), methods=methods)
                   for path, handler in ((CONFIGURATION_PATH, issuer_discovery.configuration),
                                         (JWKS_PATH, issuer_discovery.jwks))]
    if store_status is not None:
        async def store(request: Request) -> Response:
            return JSONResponse(await store_status())
        # The store's members and their health (`corral status`); authenticated.
        routes.append(Route(STORE_STATUS_PATH, _guard(store)))
    if ui is not None:
        routes += [Route("/ui", _to_ui), Mount("/ui", app=ui)]
    routes.append(Route("/{path:path}", _guard(dispatch), methods=methods))
    if streams is not None:
        routes.append(WebSocketRoute("/api/v1/namespaces/{namespace}/pods/{name}/{verb}",
                                     streams.websocket))
    routes.append(WebSocketRoute("/{path:path}", unknown_websocket))
    app = Starlette(routes=routes)
    wrapped: ASGIApp = FairnessMiddleware(app, lanes_for(max_requests_inflight))
    wrapped = NodeRestrictionMiddleware(wrapped, registry)
    wrapped = AuthorizationMiddleware(wrapped, authorizer)
    wrapped = ImpersonationMiddleware(wrapped, authorizer)
    if audit is not None:  # who authenticated, before impersonation changes it
        wrapped = AuditUser(wrapped, audit[0])
    if authenticator is not None:
        ui_prefixes = ("/ui/",) if ui is not None else ()
        wrapped = AuthMiddleware(wrapped, authenticator, open_paths=OPEN_PATHS | {"/ui"},
                                 open_prefixes=OPEN_PREFIXES + ui_prefixes, session=session,
                                 more_tokens=_users_only(tokens) if tokens else None)
    if audit is not None:  # outside authentication: its refusals are logged too
        wrapped = AuditMiddleware(wrapped, *audit)
    return MetricsMiddleware(wrapped)


def _users_only(tokens: TokenCheck) -> Callable[[str], Awaitable[User | None]]:
    async def check(token: str) -> User | None:
        return (await tokens(token, ()))[0]
    return check


def _review_kind(path: str) -> tuple[str, str] | None:
    """(review kind, namespace) of a review's path: /apis/{group}/v1/{plural}, or
    /apis/authorization.k8s.io/v1/namespaces/{ns}/localsubjectaccessreviews."""
    parts = path.split("/")  # "", "apis", group, version, [namespaces, ns,] plural
    if len(parts) == 7 and parts[4] == "namespaces" and parts[5]:
        namespace, plural = parts[5], parts[6]
        if plural != "localsubjectaccessreviews":
            return None
    elif len(parts) == 5:
        namespace, plural = "", parts[4]
        if plural == "localsubjectaccessreviews":
            return None
    else:
        return None
    if parts[1] != "apis" or parts[3] != "v1":
        return None
    kind = REVIEWS.get((parts[2], plural))
    return (kind, namespace) if kind is not None else None
