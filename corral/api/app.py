"""The API server's ASGI application: routing, error mapping, auth and metrics.

    request → MetricsMiddleware → AuthMiddleware → AuthorizationMiddleware → dispatch
        /healthz /readyz /livez /version /metrics
        /api /apis /api/v1 /apis/{g}[/{v}]        discovery
        /openapi/v3[...]                          OpenAPI
        /apis/authentication.k8s.io/v1/self*, /apis/authorization.k8s.io/v1/self*
                                                  ReviewHandler → the Authorizer
        /apis/metrics.k8s.io/v1beta1/...          ResourceMetrics → the agents' usage
        /api/v1/nodes/{name}/proxy/{path}         NodeProxy → the node's agent
        everything else                           ResourceHandler → Registry → Store
                                                  (pods/{name}/log → the agent)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from corral.api.auth import AuthMiddleware, TokenAuthenticator
from corral.api.authz import AllowAuthenticated, AuthorizationMiddleware, Authorizer
from corral.api.errors import APIError, NotFound
from corral.api.handlers.discovery import (
    is_discovery_path,
    serve_discovery,
    serve_openapi,
    version,
)
from corral.api.handlers.node_proxy import NODE_PROXY_PATH
from corral.api.handlers.resource_metrics import ResourceMetrics, SummaryFetch, is_metrics_path
from corral.api.handlers.resources import LogHandler, ResourceHandler
from corral.api.handlers.responses import status_response
from corral.api.handlers.reviews import REVIEWS, ReviewHandler
from corral.api.metrics import MetricsMiddleware, metrics_response
from corral.api.registry import Registry

# kr8s asks /version/ (trailing slash); kube-apiserver answers both.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/version", "/version/"})

Handler = Callable[[Request], Awaitable[Response]]
# (request, node name, path below .../proxy) → the agent's answer
NodeProxyHandler = Callable[[Request, str, str], Awaitable[Response]]


def _guard(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except APIError as err:
            return status_response(err)

    return guarded


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _metrics(request: Request) -> Response:
    return metrics_response()


def build_app(
    registry: Registry,
    authenticator: TokenAuthenticator | None,
    *,
    logs: LogHandler | None = None,
    nodes: NodeProxyHandler | None = None,
    ready: Callable[[], bool] = lambda: True,
    authorizer: Authorizer | None = None,
    summaries: SummaryFetch | None = None,
) -> ASGIApp:
    resources = ResourceHandler(registry, logs)
    authorizer = authorizer or AllowAuthenticated()
    reviews = ReviewHandler(authorizer)
    metrics = ResourceMetrics(registry, summaries) if summaries is not None else None

    async def dispatch(request: Request) -> Response:
        path = request.url.path
        if path.startswith("/openapi/"):
            return await serve_openapi(request)
        proxied = NODE_PROXY_PATH.match(path) if nodes is not None else None
        if proxied is not None and nodes is not None:
            return await nodes(request, proxied.group(1), proxied.group(2) or "/")
        review = _review_kind(path)
        if review is not None:
            return await reviews(request, review)
        if metrics is not None and is_metrics_path(path):
            return await metrics(request)
        if path.startswith(("/api/", "/apis/")) or path in ("/api", "/apis"):
            if is_discovery_path(path):
                return await serve_discovery(request)
            return await resources(request)
        raise NotFound(f"the server could not find the requested resource (path {path})")

    async def readyz(request: Request) -> Response:
        if not ready():
            return PlainTextResponse("not ready", status_code=503)
        return PlainTextResponse("ok")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(routes=[
        Route("/healthz", _ok), Route("/livez", _ok), Route("/readyz", readyz),
        Route("/version", _guard(version)), Route("/version/", _guard(version)),
        Route("/metrics", _metrics),
        Route("/{path:path}", _guard(dispatch), methods=methods),
    ])
    wrapped: ASGIApp = AuthorizationMiddleware(app, authorizer)
    if authenticator is not None:
        wrapped = AuthMiddleware(wrapped, authenticator, open_paths=OPEN_PATHS)
    return MetricsMiddleware(wrapped)


def _review_kind(path: str) -> str | None:
    parts = path.split("/")  # "", "apis", group, version, plural
    if len(parts) != 5 or parts[1] != "apis" or parts[3] != "v1":
        return None
    return REVIEWS.get((parts[2], parts[4]))
