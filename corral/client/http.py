"""The async client for the Kubernetes API corral serves.

Convention: objects travel as plain dicts (the wire form). Writes also accept a
pydantic model from corral.api.kinds (encoded first); ``get_as``/``list_as``
and ``as_model`` give typed objects when a caller wants them.

    kind → Resource (lookup/BY_KIND) → path → httpx request
      2xx → dict (or text for logs)    ≥400 Status → corral.api.errors.*
      connection error → retried for reads; raised as ServerUnreachable

Only reads (GET, list, the start of a watch) are retried, with back-off and
jitter. A write is retried only when the connection was refused: then nothing
was sent, so the write cannot have happened.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal, Self, TypeVar, overload

import httpx
import orjson
from pydantic import BaseModel

from corral.api.errors import APIError, BadRequest, from_status
from corral.api.fencing import FENCE_HEADER
from corral.api.kinds import encode
from corral.api.kinds.base import TypedObject
from corral.api.resources import BY_KIND, COMPUTED, Resource, lookup
from corral.client.asgi_transport import AsgiTransport
from corral.client.backoff import Backoff
from corral.client.failover import FailoverTransport
from corral.client.kubeconfig import ClusterConfig, load_kubeconfig
from corral.client.lighthttp import LightPool
from corral.client.watch import WatchEvent, stream_events
from corral.objects import Obj, meta, name_of, namespace_of

log = logging.getLogger(__name__)

Kind = str | Resource
Body = Obj | BaseModel
PatchType = Literal["merge", "strategic", "json", "apply"]
M = TypeVar("M", bound=TypedObject)

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
READ_ATTEMPTS = 6
# Gives the writes of a leader-elected component their fence (api/fencing.py).
Fence = Callable[[], str | None]
# A watch with bookmarks hears from the server at least every 30 s; silence
# much longer than that means the connection is dead.
WATCH_READ_TIMEOUT = 90.0


class ServerUnreachable(ConnectionError):
    """The master could not be reached (refused, reset, timed out), after the
    retries that were safe. Retrying later may help."""


@dataclass(frozen=True)
class ListPage:
    items: list[Obj]
    resource_version: str
    continue_: str = ""


def server_urls(server: str | Sequence[str]) -> list[str]:
    """One URL, a comma-separated list, or a sequence -> [url, ...]."""
    parts = server.split(",") if isinstance(server, str) else list(server)
    urls = [u.strip().rstrip("/") for u in parts if u.strip()]
    if not urls:
        raise ValueError("no server URL given")
    return urls


def resource_for(kind: Kind) -> Resource:
    """A Resource from a Resource, kind ("Pod"), plural, singular or short name."""
    if isinstance(kind, Resource):
        return kind
    res = BY_KIND.get(kind) or lookup(kind)
    if res is None:
        raise BadRequest(f'the server doesn\'t have a resource type "{kind}"')
    return res


def resource_path(res: Resource, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    base = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    parts = [base]
    if res.namespaced and namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(res.plural)
    if name is not None:
        parts.append(name)
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


def as_model(model: type[M], obj: Obj) -> M:
    """Decode a wire dict into its corral.api.kinds model."""
    return model.model_validate(obj)


def _body(obj: Body) -> Obj:
    return encode(obj) if isinstance(obj, BaseModel) else obj


def _kind_of(obj: Obj) -> Resource:
    kind = obj.get("kind")
    if not kind:
        raise BadRequest("object has no kind")
    return resource_for(str(kind))


def _error_from(response: httpx.Response, body: bytes) -> APIError:
    try:
        status = orjson.loads(body) if body else None
    except ValueError:
        status = None
    if not isinstance(status, dict):
        status = {"message": body.decode(errors="replace").strip() or response.reason_phrase}
    return from_status(response.status_code, status)


ClientCert = tuple[str, str]  # PEM files: certificate, key


def _unverified() -> ssl.SSLContext:
    """What httpx's verify=False is: TLS without checking the server."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _ssl_context(ca_pem: bytes | None, insecure: bool,
                 client_cert: ClientCert | None = None) -> ssl.SSLContext | bool:
    if insecure:
        return False
    if not ca_pem and client_cert is None:
        return True
    context = ssl.create_default_context(cadata=ca_pem.decode() if ca_pem else None)
    if client_cert is not None:
        context.load_cert_chain(*client_cert)  # client certificate authentication
    return context


class Client:
    """``server`` is one master's URL or several (a list, or comma-separated): with
    several, requests go to whichever answers (failover.py)."""

    def __init__(self, server: str | Sequence[str], token: str | None = None,
                 ca_pem: bytes | None = None, insecure: bool = False, *, timeout: float = 30.0,
                 max_connections: int = 1000, attempts: int = READ_ATTEMPTS,
                 transport: httpx.AsyncBaseTransport | None = None,
                 user_agent: str = "corral-client",
                 client_cert: ClientCert | None = None, light: bool = False) -> None:
        self.servers = server_urls(server)
        self.server = self.servers[0]
        self.attempts = max(attempts, 1)  # tries of a request that is safe to repeat
        self._fence: Fence | None = None
        self._term_held: Callable[[], bool] | None = None
        # The API seats requests by it (agents, system components, others).
        headers = {"Accept": "application/json", "User-Agent": user_agent}
        # Bearer tokens travel only over TLS, as kubectl does.
        if token and self.server.startswith("https://"):
            headers["Authorization"] = f"Bearer {token}"
        self._ca_pem, self._insecure, self._headers = ca_pem, insecure, headers
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._limits = httpx.Limits(max_connections=max_connections,
                                    max_keepalive_connections=100, keepalive_expiry=60.0)
        self._transport = transport  # given by the caller (ASGI, tests): not ours to rebuild
        self._failover: FailoverTransport | None = None
        # light: plain requests to a single master over lighthttp.py (the node
        # agent's: its Lease renewals and status writes); streams stay httpx's.
        self._lean = light and transport is None and len(self.servers) == 1
        self._http = self._open(client_cert)
        self._light = self._open_light(client_cert)
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def ca_pem(self) -> bytes | None:
        """The CA this client trusts the API server by (None: the system's, or none)."""
        return self._ca_pem

    def _open(self, client_cert: ClientCert | None) -> httpx.AsyncClient:
        verify = _ssl_context(self._ca_pem, self._insecure, client_cert)
        transport = self._transport
        if transport is None and len(self.servers) > 1:
            previous = self._failover
            transport = self._failover = FailoverTransport(
                self.servers, httpx.AsyncHTTPTransport(verify=verify, limits=self._limits))
            if previous is not None:
                self._failover.follow(previous)
        return httpx.AsyncClient(
            base_url=self.server, headers=self._headers, verify=verify, http1=True,
            http2=False, timeout=self._timeout, limits=self._limits, transport=transport,
        )

    def _open_light(self, client_cert: ClientCert | None) -> LightPool | None:
        if not self._lean:
            return None
        verify = _ssl_context(self._ca_pem, self._insecure, client_cert)
        if not isinstance(verify, ssl.SSLContext):
            verify = ssl.create_default_context() if verify else _unverified()
        return LightPool(self.server, verify, connect_timeout=min(self._timeout.read or 30.0,
                                                                 10.0),
                         timeout=self._timeout.read or 30.0)

    def use_client_cert(self, client_cert: ClientCert, grace: float = 2.0) -> None:
        """Authenticate with a renewed client certificate from now on: new requests
        go over new connections showing it, and the old connections are closed
        after ``grace`` seconds (requests under way finish; watches end and their
        informers take them up again), as the kubelet closes every connection when
        its certificate rotates, so that none goes on authenticating with the old."""
        if self._transport is not None:
            raise ValueError("a client on a transport it was given cannot change its "
                             "certificate")
        old, self._http = self._http, self._open(client_cert)
        old_light, self._light = self._light, self._open_light(client_cert)
        task = asyncio.create_task(self._retire(old, old_light, grace), name="client-retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _retire(old: httpx.AsyncClient, old_light: LightPool | None,
                      grace: float) -> None:
        try:
            await asyncio.sleep(grace)
        finally:
            if old_light is not None:
                old_light.close()
            await old.aclose()

    @property
    def current_server(self) -> str:
        """The master requests go to now."""
        return self._failover.current if self._failover is not None else self.server

    def fenced(self, fence: Fence, term_held: Callable[[], bool]) -> Client:
        """A view of this client (same connections; do not close it) whose writes
        carry ``fence()`` in the FENCE_HEADER: the API refuses them once the
        leader Lease it names has passed to someone else. ``term_held()`` says
        whether that term still holds by the leader's own clock (read through
        the view's ``term_held``)."""
        view = copy.copy(self)
        view._fence, view._term_held = fence, term_held
        return view

    def term_held(self) -> bool:
        """Whether this view's leader term still holds by our own clock (always, for
        a view without a fence): a leader commands others directly (the Mesos master
        its agents) only while it does, since they cannot ask the API as its writes
        do. False after a pause longer than the renew deadline, at once."""
        return self._term_held is None or self._term_held()

    def fence(self) -> str | None:
        """The fence this view's writes carry (``fenced``), if any: a leader shows it
        to others it commands too (the Mesos master to agents)."""
        return self._fence() if self._fence is not None else None

    @classmethod
    def from_config(cls, cfg: ClusterConfig, user_agent: str = "corral-client") -> Client:
        return cls(cfg.server, cfg.token, cfg.ca_pem, cfg.insecure, user_agent=user_agent,
                   client_cert=cfg.client_cert)

    @classmethod
    def from_kubeconfig(cls, path: str | PathLike[str] | None = None) -> Client:
        return cls.from_config(load_kubeconfig(path))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in list(self._retiring):
            task.cancel()  # closes what it retires at once
        await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._light is not None:
            self._light.close()
        await self._http.aclose()

    # -- transport --------------------------------------------------------

    async def raw(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                  json_body: Any = None, content: bytes | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
        """Send one request; ≥400 raises the APIError the Status names."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        fence = self._fence() if self._fence is not None and method not in ("GET", "HEAD") \
            else None
        if fence:
            headers = {FENCE_HEADER: fence, **(headers or {})}
        if json_body is not None:
            content = orjson.dumps(json_body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        request = self._http.build_request(method, path, params=params, content=content,
                                           headers=headers)
        response = await self._send(request, idempotent=method in ("GET", "HEAD"))
        if response.status_code >= 400:
            raise _error_from(response, response.content)
        return response

    async def _send(self, request: httpx.Request, idempotent: bool,
                    stream: bool = False) -> httpx.Response:
        backoff = Backoff(initial=0.1, maximum=3.0)
        for attempt in range(1, self.attempts + 1):
            try:
                if self._light is not None and not stream:
                    response = await self._light.send(request)
                elif isinstance(self._transport, AsgiTransport) and not stream:
                    response = await self._transport.send_whole(request)
                else:
                    response = await self._http.send(request, stream=stream)
            except httpx.ConnectError as err:
                last: httpx.TransportError = err  # refused before sending: always safe
            except httpx.TransportError as err:
                if not idempotent:
                    raise ServerUnreachable(f"{request.method} {request.url}: {err!r}") from err
                last = err
            else:
                # A 429 with Retry-After is the API's fairness refusing before it ran
                # anything: any verb may be sent again (client-go does the same). A
                # 429 without it (an eviction a disruption budget refuses) is the
                # caller's to handle.
                throttled = response.status_code == 429 and "Retry-After" in response.headers
                retry = throttled or (idempotent and response.status_code == 503)
                if retry and attempt < self.attempts:
                    await response.aclose()
                    await asyncio.sleep(self._retry_after(response, backoff))
                    continue
                return response
            if attempt == self.attempts:
                break
            log.debug("request retry method=%s url=%s error=%r", request.method, request.url,
                      last)
            await asyncio.sleep(backoff.next_delay())
        raise ServerUnreachable(f"cannot reach {self.current_server}: {last!r}") from last

    @staticmethod
    def _retry_after(response: httpx.Response, backoff: Backoff) -> float:
        try:
            return min(float(response.headers.get("Retry-After", "")), 10.0)
        except ValueError:
            return backoff.next_delay()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Obj:
        response = await self.raw(method, path, **kwargs)
        data = orjson.loads(response.content)
        return data if isinstance(data, dict) else {"items": data}

    # -- reads ------------------------------------------------------------

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj:
        return await self._json("GET", resource_path(resource_for(kind), namespace, name))

    async def get_as(self, model: type[M], name: str, namespace: str | None = None) -> M:
        return as_model(model, await self.get(model.__name__, name, namespace))

    async def list(self, kind: Kind, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> ListPage:
        params = {"labelSelector": label_selector, "fieldSelector": field_selector,
                  "limit": limit, "continue": continue_ or None,
                  "resourceVersion": resource_version}
        data = await self._json("GET", resource_path(resource_for(kind), namespace),
                                params=params)
        page = meta(data)
        return ListPage(list(data.get("items") or []), str(page.get("resourceVersion", "")),
                        str(page.get("continue", "") or ""))

    async def list_all(self, kind: Kind, namespace: str | None = None, *,
                       label_selector: str | None = None, field_selector: str | None = None,
                       page_size: int = 500) -> ListPage:
        """Every page, following ``continue``; the resourceVersion is the first page's
        (the snapshot all pages were read at)."""
        first = await self.list(kind, namespace, label_selector=label_selector,
                                field_selector=field_selector, limit=page_size)
        items, token = list(first.items), first.continue_
        while token:
            page = await self.list(kind, namespace, label_selector=label_selector,
                                   field_selector=field_selector, limit=page_size,
                                   continue_=token)
            items.extend(page.items)
            token = page.continue_
        return ListPage(items, first.resource_version, "")

    async def list_as(self, model: type[M], namespace: str | None = None, *,
                      label_selector: str | None = None,
                      field_selector: str | None = None) -> builtins.list[M]:
        page = await self.list_all(model.__name__, namespace, label_selector=label_selector,
                                   field_selector=field_selector)
        return [as_model(model, item) for item in page.items]

    # -- writes -----------------------------------------------------------

    async def create(self, obj: Body, namespace: str | None = None) -> Obj:
        """POST; the namespace defaults to the object's own (else "default")."""
        body = _body(obj)
        res = _kind_of(body)
        ns = namespace or meta(body).get("namespace") or "default"
        return await self._json("POST", resource_path(res, ns), json_body=body)

    async def update(self, obj: Body) -> Obj:
        """PUT; the object's metadata.resourceVersion makes it a compare-and-swap
        (Conflict when someone wrote in between)."""
        return await self._put(_body(obj), None)

    async def update_status(self, obj: Body) -> Obj:
        return await self._put(_body(obj), "status")

    async def _put(self, body: Obj, subresource: str | None) -> Obj:
        path = resource_path(_kind_of(body), namespace_of(body) or "default", name_of(body),
                             subresource)
        return await self._json("PUT", path, json_body=body)

    async def patch(self, kind: Kind, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: PatchType = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None) -> Obj:
        path = resource_path(resource_for(kind), namespace, name, subresource)
        params = {"fieldManager": field_manager,
                  "force": None if force is None else str(force).lower()}
        return await self._json("PATCH", path, params=params,
                                content=orjson.dumps(patch),
                                headers={"Content-Type": PATCH_CONTENT_TYPES[patch_type]})

    async def delete(self, kind: Kind, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     propagation_policy: str | None = None,
                     preconditions: dict[str, str] | None = None) -> Obj:
        """DELETE; returns the object (finalizers pending or in its grace period)
        or a Success Status."""
        opts = self._delete_options(grace_period_seconds, propagation_policy, preconditions)
        return await self._json("DELETE", resource_path(resource_for(kind), namespace, name),
                                json_body=opts)

    async def delete_collection(self, kind: Kind, namespace: str | None = None, *,
                                label_selector: str | None = None,
                                field_selector: str | None = None,
                                propagation_policy: str | None = None) -> builtins.list[Obj]:
        params = {"labelSelector": label_selector, "fieldSelector": field_selector}
        opts = self._delete_options(None, propagation_policy, None)
        data = await self._json("DELETE", resource_path(resource_for(kind), namespace),
                                params=params, json_body=opts)
        return list(data.get("items") or [])

    @staticmethod
    def _delete_options(grace: int | None, propagation: str | None,
                        preconditions: dict[str, str] | None) -> Obj:
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace is not None:
            opts["gracePeriodSeconds"] = grace
        if propagation:
            opts["propagationPolicy"] = propagation
        if preconditions:
            opts["preconditions"] = preconditions
        return opts

    # -- subresources -----------------------------------------------------

    async def bind(self, pod_name: str, namespace: str, node_name: str,
                   resource_version: str | None = None, kind: Kind = "Pod") -> None:
        """POST pods/{name}/binding (or allocs/{name}/binding); Conflict if it is
        already bound (or its resourceVersion moved on, when given)."""
        meta: Obj = {"name": pod_name, "namespace": namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        body = {"kind": "Binding", "apiVersion": "v1", "metadata": meta,
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        await self._json("POST", resource_path(resource_for(kind), namespace, pod_name,
                                               "binding"), json_body=body)

    async def review(self, body: Obj) -> Obj:
        """POST a TokenReview or SubjectAccessReview: answered, never stored."""
        res = next((r for r in COMPUTED if r.kind == body.get("kind") and not r.namespaced),
                   None)
        if res is None:
            raise BadRequest(f'the server doesn\'t have a review "{body.get("kind")}"')
        return await self._json("POST", resource_path(res), json_body=body)

    async def create_token(self, account: str, namespace: str, request: Obj) -> Obj:
        """POST serviceaccounts/{account}/token: a TokenRequest, answered with the
        token in status.token."""
        return await self._json("POST", resource_path(BY_KIND["ServiceAccount"], namespace,
                                                      account, "token"), json_body=request)

    async def evict(self, pod_name: str, namespace: str) -> None:
        body = {"kind": "Eviction", "apiVersion": "policy/v1",
                "metadata": {"name": pod_name, "namespace": namespace}}
        await self._json("POST", resource_path(BY_KIND["Pod"], namespace, pod_name, "eviction"),
                         json_body=body)

    async def get_scale(self, kind: Kind, name: str, namespace: str) -> Obj:
        return await self._json("GET", resource_path(resource_for(kind), namespace, name,
                                                     "scale"))

    async def set_scale(self, kind: Kind, name: str, namespace: str, replicas: int) -> Obj:
        return await self.patch(kind, name, {"spec": {"replicas": replicas}}, namespace,
                                subresource="scale")

    @overload
    async def logs(self, pod_name: str, namespace: str, *, container: str | None = None,
                   follow: Literal[False] = False, tail_lines: int | None = None,
                   previous: bool = False, since_seconds: int | None = None,
                   timestamps: bool = False, kind: Kind = "Pod",
                   task: str | None = None) -> str: ...

    @overload
    async def logs(self, pod_name: str, namespace: str, *, container: str | None = None,
                   follow: Literal[True], tail_lines: int | None = None,
                   previous: bool = False, since_seconds: int | None = None,
                   timestamps: bool = False, kind: Kind = "Pod",
                   task: str | None = None) -> AsyncIterator[str]: ...

    async def logs(self, pod_name: str, namespace: str, *, container: str | None = None,
                   follow: bool = False, tail_lines: int | None = None,
                   previous: bool = False, since_seconds: int | None = None,
                   timestamps: bool = False, kind: Kind = "Pod",
                   task: str | None = None) -> str | AsyncIterator[str]:
        """The pod's log as text, or with follow=True an iterator of lines as they come.
        With kind="Alloc", one task's lines of the Alloc's log."""
        params = {"container": container, "tailLines": tail_lines,
                  "sinceSeconds": since_seconds, "previous": "true" if previous else None,
                  "timestamps": "true" if timestamps else None,
                  "follow": "true" if follow else None, "task": task}
        path = resource_path(resource_for(kind), namespace, pod_name, "log")
        if not follow:
            return (await self.raw("GET", path, params=params)).text
        return self._follow(path, params)

    async def _follow(self, path: str, params: dict[str, Any]) -> AsyncIterator[str]:
        response = await self.open_stream(path, params, read_timeout=None)
        try:
            async for line in response.aiter_lines():
                yield line
        finally:
            await response.aclose()

    # -- watch ------------------------------------------------------------

    async def open_stream(self, path: str, params: dict[str, Any],
                          read_timeout: float | None,
                          headers: dict[str, str] | None = None) -> httpx.Response:
        """Open a streaming GET; the caller reads it and closes it."""
        params = {k: v for k, v in params.items() if v is not None}
        timeout = httpx.Timeout(30.0, connect=10.0, read=read_timeout)
        request = self._http.build_request("GET", path, params=params, timeout=timeout,
                                           headers=headers)
        response = await self._send(request, idempotent=True, stream=True)
        if response.status_code >= 400:
            body = await response.aread()
            await response.aclose()
            raise _error_from(response, body)
        return response

    def watch(self, kind: Kind, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, timeout_seconds: int | None = None,
              allow_bookmarks: bool = True) -> AsyncIterator[WatchEvent]:
        """Events after ``resource_version`` (none given: ADDED for what exists, then
        changes). Raises Gone when that version was compacted away: re-list. Ends
        when the server closes the stream; ServerUnreachable if the connection
        breaks mid-stream. Either way the caller re-watches from the last
        resourceVersion it saw."""
        params = {"watch": "1", "resourceVersion": resource_version,
                  "labelSelector": label_selector, "fieldSelector": field_selector,
                  "timeoutSeconds": timeout_seconds,
                  "allowWatchBookmarks": "true" if allow_bookmarks else None}
        path = resource_path(resource_for(kind), namespace)
        return stream_events(self, path, params, WATCH_READ_TIMEOUT, ServerUnreachable)
