"""Authorization: the one seam every request and every access review goes through.

    request ─► AuthMiddleware (who) ─► AuthorizationMiddleware (may they?) ─► app
                                            │ attributes_of(scope): verb, resource,
                                            │ subresource, namespace, name, group, path
                                            ▼
                                   Authorizer.authorize(attributes) → allowed, reason
                                   Authorizer.rules_for(user, ns)   → what they may do
                                                                     (auth can-i --list)

kube-apiserver's model (k8s.io/apiserver/pkg/authorization/authorizer): the
request's attributes are computed once from its path and method (RequestInfo),
an Authorizer decides, a denial is a 403 worded as Kubernetes words it.
SelfSubjectAccessReview and SelfSubjectRulesReview ask the same Authorizer, so
`kubectl auth can-i` tells the truth about what the server enforces.

The server's authorizer is RBAC (corral/api/rbac.py); AllowAuthenticated (every
authenticated user may do everything) remains for tests of the seam itself.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.auth import ANONYMOUS, User
from corral.api.errors import APIError, Forbidden

# kube-apiserver's system:public-info-viewer: what anyone may read.
PUBLIC_INFO_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})
PUBLIC_INFO_PREFIXES = ("/healthz/", "/livez/", "/readyz/")  # one health check each
# The dashboard (its page, and its login that trades a token for a session)
# is open: what it shows comes through the API, authorized as its user.
DASHBOARD = "/ui"
# The identity of requests to a server running without authentication
# (--insecure-http), as kube-apiserver's insecure port named it.
UNSECURED = User("system:unsecured", "", ("system:masters", "system:authenticated"))

# The user of the request being handled, for what below the middleware decides by
# who asks (RBAC's escalation checks: rbac_escalation.py); None for the server's
# own writes (bootstrap, default policy).
CURRENT_USER: ContextVar[User | None] = ContextVar("current_user", default=None)

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
                 "GET": "get", "HEAD": "get"}


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do (Kubernetes' authorizer.Attributes)."""

    user: User
    verb: str  # get list watch create update patch delete deletecollection (or HTTP verb)
    resource_request: bool
    path: str = ""  # the URL path of a non-resource request
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


@dataclass(frozen=True)
class ResourceRule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ("*",)
    resource_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        out = {"verbs": list(self.verbs), "apiGroups": list(self.api_groups),
               "resources": list(self.resources)}
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        return out


@dataclass(frozen=True)
class NonResourceRule:
    verbs: tuple[str, ...]
    urls: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {"verbs": list(self.verbs), "nonResourceURLs": list(self.urls)}


@dataclass(frozen=True)
class Rules:
    resource: tuple[ResourceRule, ...]
    non_resource: tuple[NonResourceRule, ...]
    incomplete: bool = False  # the authorizer cannot list everything it would allow


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason): the reason is shown in access reviews and denials."""
        ...

    def rules_for(self, user: User, namespace: str) -> Rules:
        """What the user may do in the namespace, for SelfSubjectRulesReview."""
        ...


class AllowAuthenticated:
    """Any authenticated user may do anything; anonymous users may GET the
    public-info paths only."""

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        if is_authenticated(attrs.user):
            return True, "corral allows every authenticated user (no RBAC configured)"
        if not attrs.resource_request and attrs.verb == "get" and (
                attrs.path in PUBLIC_INFO_PATHS or attrs.path.startswith(PUBLIC_INFO_PREFIXES)):
            return True, "public information"
        if not attrs.resource_request and (attrs.path == DASHBOARD
                                           or attrs.path.startswith(DASHBOARD + "/")):
            return True, "the dashboard authenticates its own users"
        return False, "anonymous requests may only read the public-info paths"

    def rules_for(self, user: User, namespace: str) -> Rules:
        if is_authenticated(user):
            return Rules((ResourceRule(("*",)),), (NonResourceRule(("*",), ("*",)),))
        return Rules((), (NonResourceRule(("get",), tuple(sorted(PUBLIC_INFO_PATHS))),))


def is_authenticated(user: User) -> bool:
    return user != ANONYMOUS and "system:unauthenticated" not in user.groups


def attributes_of(user: User, method: str, path: str, query: str = "") -> Attributes:
    """A request's attributes, as kube-apiserver's RequestInfoFactory computes them."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        rest = []
    if not rest:  # /api, /apis/{group}/{version}, /version, /openapi/...: non-resource
        return Attributes(user, _METHOD_VERBS.get(method, method.lower()), False, path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]  # also of the Namespace object itself, as Kubernetes has it
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    # Only the part after the name is the subresource (nodes/x/proxy/a/b is
    # nodes/proxy), as kube-apiserver's RequestInfo has it.
    resource, name, subresource = rest[0], (rest[1:2] or [""])[0], (rest[2:3] or [""])[0]
    verb = _resource_verb(method, bool(name), _flag(query, "watch"))
    if verb in ("list", "watch"):
        # One object listed or watched by name is that name's to RBAC (resourceNames),
        # as kube-apiserver's RequestInfo takes it from the field selector.
        name = _selected_name(query)
    return Attributes(user, verb, True, path, group, version, namespace, resource,
                      subresource, name)


def request_attributes(scope: Scope) -> Attributes:
    """The attributes of an HTTP or websocket request, for every middleware that
    decides on them. A websocket upgrade (exec, attach, port-forward) counts as
    create, as kube-apiserver counts it since 1.30 (the upgrade's GET once let
    "get" do it)."""
    method = scope.get("method", "GET") if scope["type"] == "http" else "POST"
    return attributes_of(user_of(scope), method, scope["path"],
                         scope.get("query_string", b"").decode("latin-1"))


def resource_attributes(user: User, verb: str, resource: str, *, name: str = "",
                        namespace: str = "", group: str = "", version: str = "",
                        subresource: str = "") -> Attributes:
    """Attributes of a resource request the server asks about itself (an
    impersonation, an access review) rather than one it parsed from a URL."""
    return Attributes(user, verb, True, "", group, version, namespace, resource, subresource,
                      name)


def _resource_verb(method: str, named: bool, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "get" if named else "list"
    if method == "DELETE" and not named:
        return "deletecollection"
    return _METHOD_VERBS.get(method, method.lower())


def _selected_name(query: str) -> str:
    """X of a fieldSelector requiring metadata.name=X (or ==X), else ""."""
    for selector in parse_qs(query).get("fieldSelector", []):
        for requirement in selector.split(","):
            key, op, value = requirement.partition("==")
            if not op:
                key, op, value = requirement.partition("=")
            if op and not key.endswith("!") and key.strip() == "metadata.name":
                return value.strip() if "/" not in value else ""
    return ""


def _flag(query: str, name: str) -> bool:
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value.lower() in ("1", "true")
    return False


def forbidden(attrs: Attributes, reason: str = "") -> Forbidden:
    """The denial, worded as kube-apiserver words it."""
    who = f'User "{attrs.user.name}"'
    if not attrs.resource_request:
        message = f'forbidden: {who} cannot {attrs.verb} path "{attrs.path}"'
        return Forbidden(message + (f": {reason}" if reason else ""))
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    what = f'{resource} "{attrs.name}"' if attrs.name else resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    message = (f'{what} is forbidden: {who} cannot {attrs.verb} resource "{resource}" in '
               f'API group "{attrs.api_group}" {where}')
    return Forbidden(message + (f": {reason}" if reason else ""), kind=attrs.resource,
                     name=attrs.name, group=attrs.api_group)


def user_of(scope: Scope) -> User:
    """The authenticated user of a request; UNSECURED on a server without auth."""
    user = scope.get("user")
    return user if isinstance(user, User) else UNSECURED


class AuthorizationMiddleware:
    """Authorizes every request after authentication; a denial is a 403 Status."""

    def __init__(self, app: ASGIApp, authorizer: Authorizer) -> None:
        self.app = app
        self.authorizer = authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        attrs = request_attributes(scope)
        allowed, reason = self.authorizer.authorize(attrs)
        if not allowed:
            await deny(scope, send, forbidden(attrs, reason))
            return
        token = CURRENT_USER.set(attrs.user)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT_USER.reset(token)


async def deny(scope: Scope, send: Send, err: APIError) -> None:
    """Answer a request refused before it reached the app with err's Status."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = orjson.dumps(err.to_status())
    await send({"type": "http.response.start", "status": err.code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
