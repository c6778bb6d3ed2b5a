"""The audit middleware: one audit.k8s.io/v1 Event per request, at its end.

    MetricsMiddleware ─► AuditMiddleware ─► AuthMiddleware ─► AuditUser ─► Impersonation ─► ...
                         │ a Record in the scope;          │ the authenticated user,
                         │ the answer's code (and an       │ the policy's level; at Request
                         │ error's Status; at              │ and above, the request body
                         │ RequestResponse, the body)      │ is kept as it is read
                         └─ after the app: the Event ─► AuditLog (sink.py)

Split in two because the user is known only after authentication, while a
request refused by authentication (401) must be logged too: the outer part
evaluates the policy itself for those, with no user. ``user`` is who
authenticated, ``impersonatedUser`` whom they acted as (kubectl --as), as
kube-apiserver records them. Only the ResponseComplete stage is written: one
line per request, with requestReceivedTimestamp and stageTimestamp (its latency);
a watch is written when it ends.

Secrets' values never reach the log: requests on secrets, serviceaccounts/token
and tokenreviews, and the dashboard's /ui/ (its login takes a bearer token), are
logged at Metadata at most, whatever the policy says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.audit.policy import Level, Policy
from corral.api.audit.sink import AuditLog
from corral.api.auth import User
from corral.api.authz import Attributes, attributes_of, user_of
from corral.api.body import parse_document
from corral.api.errors import APIError
from corral.objects import rfc3339_micro

SCOPE_KEY = "corral.audit"
BODY_LIMIT = 1024 * 1024  # bodies larger than this are left out of the event
# (group, resource) whose bodies carry credentials: Metadata at most.
SENSITIVE = frozenset({("", "secrets"), ("", "serviceaccounts/token"),
                       ("authentication.k8s.io", "tokenreviews")})
# Non-resource paths whose bodies carry credentials: the dashboard's login (a
# bearer token) and its one-time links.
SENSITIVE_PATHS = ("/ui/",)
NO_USER = User("")
STREAMS = frozenset({"log", "exec", "attach", "portforward", "proxy"})


@dataclass
class Record:
    received: datetime
    audit_id: str
    user: User | None = None  # set once authenticated
    level: Level = Level.NONE
    omitted: frozenset[str] = frozenset()
    code: int = 0
    request_body: list[bytes] = field(default_factory=list)
    response_body: list[bytes] = field(default_factory=list)
    response_json: bool = False
    creates: bool = False  # a POST: the created object's name comes from the response
    keeps_response: bool = False  # RequestResponse, and not a stream


class AuditMiddleware:
    def __init__(self, app: ASGIApp, policy: Policy, sink: AuditLog) -> None:
        self.app = app
        self.policy = policy
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        record = Record(datetime.now(UTC), str(uuid.uuid4()))
        scope[SCOPE_KEY] = record

        async def sending(message: Message) -> None:
            _observe(record, message)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if record.user is None:  # refused before authentication let it in
                decide(self.policy, record, attributes_of(NO_USER, _method(scope),
                                                          scope["path"]))
            if record.level > Level.NONE and "ResponseComplete" not in record.omitted:
                await self.sink.emit(event(record, scope))


def decide(policy: Policy, record: Record, attrs: Attributes) -> None:
    """The request's level (capped for credentials) and omitted stages."""
    decision = policy.decide(attrs)
    level = decision.level
    if _sensitive(attrs):
        level = min(level, Level.METADATA)
    record.level, record.omitted = Level(level), decision.omit_stages
    # Streams (watch, logs, exec, proxied traffic) are never kept: as in Kubernetes,
    # their events carry no responseObject, and a long watch would pile up.
    record.keeps_response = record.level is Level.REQUEST_RESPONSE and (
        attrs.verb != "watch" and attrs.subresource not in STREAMS)


class AuditUser:
    """Inside authentication: records who the request is from and decides its level."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = scope.get(SCOPE_KEY)
        if not isinstance(record, Record):
            await self.app(scope, receive, send)
            return
        record.user = user_of(scope)
        record.creates = scope["type"] == "http" and scope.get("method") == "POST"
        query = scope.get("query_string", b"").decode("latin-1")
        decide(self.policy, record, attributes_of(record.user, _method(scope), scope["path"],
                                                  query))
        if record.level < Level.REQUEST or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def receiving() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                _keep(record.request_body, message.get("body", b""))
            return message

        await self.app(scope, receiving, send)


def _observe(record: Record, message: Message) -> None:
    kind = message["type"]
    if kind == "http.response.start":
        record.code = int(message["status"])
        headers = dict(message.get("headers") or [])
        record.response_json = headers.get(b"content-type", b"").startswith(b"application/json")
        message["headers"] = [*message.get("headers", ()),
                              (b"audit-id", record.audit_id.encode())]
    elif kind == "http.response.body":
        # An error's Status is read at every level (its reason and message are
        # Metadata), so is a created object (its name is); others at RequestResponse.
        if record.response_json and (record.code >= 400 or record.creates
                                     or record.keeps_response):
            _keep(record.response_body, message.get("body", b""))
    elif kind == "websocket.accept":
        record.code = 101
    elif kind == "websocket.close" and not record.code:
        # refused before the upgrade was accepted: by authentication (no user
        # yet) or after it (authorization, admission)
        record.code = 403 if record.user is not None else 401
    elif kind == "websocket.http.response.start":
        record.code = int(message["status"])


def _keep(parts: list[bytes], chunk: bytes) -> None:
    if sum(map(len, parts)) + len(chunk) <= BODY_LIMIT:
        parts.append(chunk)
    else:
        parts.clear()
        parts.append(b"\0")  # marks "too large": not JSON, so left out


def _method(scope: Scope) -> str:
    return str(scope.get("method", "GET")) if scope["type"] == "http" else "POST"


def _sensitive(attrs: Attributes) -> bool:
    if not attrs.resource_request:
        return attrs.path.startswith(SENSITIVE_PATHS)
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (attrs.api_group, resource) in SENSITIVE or (attrs.api_group, attrs.resource) == (
        "", "secrets")


def event(record: Record, scope: Scope) -> dict[str, Any]:
    """The audit.k8s.io/v1 Event of a finished request."""
    user = record.user or NO_USER
    query = scope.get("query_string", b"").decode("latin-1")
    attrs = attributes_of(user, _method(scope), scope["path"], query)
    uri = scope["path"] + (f"?{query}" if query else "")
    ev: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": record.level.text,
        "auditID": record.audit_id, "stage": "ResponseComplete", "requestURI": uri,
        "verb": attrs.verb, "user": _user(record.user),
    }
    acting = scope.get("user")
    if record.user is not None and isinstance(acting, User) and acting != record.user:
        ev["impersonatedUser"] = _user(acting)
    client = scope.get("client")
    ev["sourceIPs"] = [client[0]] if client else []
    agent = _header(scope, b"user-agent")
    if agent:
        ev["userAgent"] = agent
    if attrs.resource_request:
        ev["objectRef"] = _object_ref(attrs, record)
    ev["responseStatus"] = _status(record)
    body = _decoded(record.request_body, scope) if record.level >= Level.REQUEST else None
    if body is not None:
        ev["requestObject"] = body
    if record.keeps_response and (
            body := _json(record.response_body)) is not None:
        ev["responseObject"] = body
    ev["requestReceivedTimestamp"] = rfc3339_micro(record.received)
    ev["stageTimestamp"] = rfc3339_micro(datetime.now(UTC))
    return ev


def _user(user: User | None) -> dict[str, Any]:
    if user is None or not user.name:
        return {}
    out: dict[str, Any] = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra}
    return out


def _object_ref(attrs: Attributes, record: Record) -> dict[str, str]:
    name = attrs.name
    if not name and record.creates and record.code < 300:  # POST to the collection
        created = _json(record.response_body)
        if isinstance(created, dict) and isinstance(created.get("metadata"), dict):
            name = str(created["metadata"].get("name") or "")
    ref = {"resource": attrs.resource, "namespace": attrs.namespace, "name": name,
           "apiGroup": attrs.api_group, "apiVersion": attrs.api_version,
           "subresource": attrs.subresource}
    return {k: v for k, v in ref.items() if v}


def _status(record: Record) -> dict[str, Any]:
    status: dict[str, Any] = {"metadata": {}, "code": record.code}
    if record.code >= 400:
        body = _json(record.response_body)
        if isinstance(body, dict) and body.get("kind") == "Status":
            for key in ("status", "message", "reason"):
                if body.get(key):
                    status[key] = body[key]
    return status


def _json(parts: list[bytes]) -> Any:
    raw = b"".join(parts)
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # YAML, protobuf, a stream, or too large: left out


def _decoded(parts: list[bytes], scope: Scope) -> Any:
    """A request body as the API read it: JSON (objects and patches), YAML or
    Kubernetes protobuf (kubectl create's generators send it)."""
    raw = b"".join(parts)
    if not raw or raw == b"\0":
        return None
    try:
        return parse_document(raw, _header(scope, b"content-type"))
    except APIError:
        return None  # what the API refused to read, it refused with a Status already


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""

