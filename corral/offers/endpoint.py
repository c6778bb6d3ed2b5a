"""The Mesos master's HTTP face, on its own port (Mesos' default is 5050): its
``/version`` is Mesos', not Kubernetes'.

    GET  /version                         {"version": "1.11.0", ...}
    POST /api/v1/scheduler                 JSON calls (protobuf: 415); SUBSCRIBE → 200,
         (also /master/api/v1/scheduler)   a chunked RecordIO stream + Mesos-Stream-Id;
                                           other calls → 202, or 400/403 as Mesos answers
    GET  /master/state, /state            the state JSON Mesos tooling reads
    GET  /master/redirect, /redirect      307 to the leading master

Scheduler calls are authenticated first (auth.py: HTTP Basic with a principal of
the credentials file, or a bearer token of the API's), as Mesos' --authenticate_frameworks
does: none or a bad one is 401 with Mesos' challenge. FrameworkInfo.principal
must be the authenticated one (filled in when absent; else 400, as Mesos), and
every later call must come from it (400). SUBSCRIBE needs RBAC's "register" on
frameworkroles.corral.dev/<role> for each of its roles (403 otherwise). The
read-only endpoints (/version, /master/state) stay open, as Mesos'
--authenticate_http_readonly is off by default.

Served by httpserver.py (asyncio and httptools: a call that does not wait is
answered without a task). Every master serves it; only the one leading the offer
allocator (its Lease, component.py) acts. A standby answers 307 with the
leader's address (found in the Lease's holder identity), or 503 while no master
leads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import orjson

from corral.api.errors import APIError, NotFound
from corral.api.rbac_policy import MESOS_MASTER_LEASE
from corral.client.http import Client, ServerUnreachable
from corral.client.leaderelection import LEASE_NAMESPACE
from corral.objects import Obj, spec
from corral.offers.auth import CHALLENGE, REGISTER, ROLES, FrameworkAuth, Principal, Unknown
from corral.offers.frameworks import check_info, framework_spec
from corral.offers.httpserver import Answer, Reply, Request, StreamReply
from corral.offers.master import HttpError, MesosMaster
from corral.offers.protocol import VERSION, Call, CallError
from corral.offers.state import master_state

log = logging.getLogger("corral.offers")

LEASE_NAME = MESOS_MASTER_LEASE
IDENTITY_MARK = "_mesos_"  # holder identity: "<host>_mesos_<this endpoint's URL>"
MAX_BODY = 4 * 1024 * 1024
STREAM_HEADER = "Mesos-Stream-Id"
LEADER_LOOKUP_SECONDS = 2.0


def identity_for(url: str, host: str) -> str:
    return f"{host}{IDENTITY_MARK}{url}"


def url_of_identity(identity: str) -> str:
    """The endpoint URL a leader's Lease identity names ("" if none)."""
    _, mark, url = identity.rpartition(IDENTITY_MARK)
    return url if mark else ""


Route = Callable[[Request], "Answer | Coroutine[Any, Any, Answer]"]


class MesosEndpoint:
    """The routes, served by httpserver.py; ``master`` is set while this process
    leads."""

    def __init__(self, client: Client, url: str, auth: FrameworkAuth) -> None:
        self.client = client
        self.url = url
        self.auth = auth
        self.master: MesosMaster | None = None
        self.started = time.time()
        self.routes: dict[str, tuple[str, Route]] = {
            "/version": ("GET", self._version),
            "/api/v1/scheduler": ("POST", self._scheduler),
            "/master/api/v1/scheduler": ("POST", self._scheduler),
            "/master/state": ("GET", self._state),
            "/state": ("GET", self._state),
            "/master/state.json": ("GET", self._state),
            "/master/redirect": ("GET", self._redirect),
            "/redirect": ("GET", self._redirect),
        }

    def handle(self, request: Request) -> Answer | Coroutine[Any, Any, Answer]:
        """The server's one handler: the route, or 404 (no such path), 405 (method)."""
        route = self.routes.get(request.path)
        if route is None:
            return Reply.text(404, "Not Found")
        method, serve = route
        if request.method != method and not (method == "GET" and request.method == "HEAD"):
            return Reply(405, b"Method Not Allowed", "text/plain; charset=utf-8",
                         [("allow", "GET, HEAD" if method == "GET" else method)])
        return serve(request)

    # -- routes -------------------------------------------------------------------------

    async def _version(self, request: Request) -> Answer:
        return _json({"version": VERSION, "build_date": "", "build_time": 0,
                      "build_user": "corral", "git_sha": "", "git_branch": ""})

    def _scheduler(self, request: Request) -> Answer | Coroutine[Any, Any, Answer]:
        """A scheduler call, answered at once when nothing in it waits: a known
        caller (Basic, or a token reviewed lately) and a call done in memory."""
        caller = self.auth.known(request.headers.get("authorization"))
        if isinstance(caller, Unknown):
            return self._authenticated(request)
        return self._call(request, caller)

    async def _authenticated(self, request: Request) -> Answer:
        try:
            caller = await self.auth.authenticate(request.headers.get("authorization"))
        except (APIError, ServerUnreachable) as err:
            return Reply.text(503, f"The master could not authenticate the call: {err}")
        answer = self._call(request, caller)
        return answer if isinstance(answer, (Reply, StreamReply)) else await answer

    def _call(self, request: Request, caller: Principal | None
              ) -> Answer | Coroutine[Any, Any, Answer]:
        if caller is None:
            return Reply(401, headers=[("WWW-Authenticate", CHALLENGE)])
        refused = _check_headers(request)
        if refused is not None:
            return refused
        master = self._leading()
        if master is None:
            return self._not_leader(request.path)
        try:
            call = Call.parse(request.body)
            if call.type == "SUBSCRIBE":
                return self._subscribe(master, call, caller)
            work = master.handle(call, request.headers.get("mesos-stream-id"), caller)
        except (CallError, HttpError) as err:
            return _refusal("", err)
        return _ACCEPTED if work is None else self._done(call.type, work)

    async def _subscribe(self, master: MesosMaster, call: Call, caller: Principal) -> Answer:
        try:
            await self._may_subscribe(call, caller)
            stream = await master.subscribe(call, caller)
        except (CallError, HttpError, APIError, ServerUnreachable) as err:
            return _refusal(call.type, err)
        return StreamReply(stream.attach, lambda: master.disconnected(stream),
                           headers=[(STREAM_HEADER, stream.id)])

    async def _done(self, kind: str, work: Coroutine[Any, Any, None]) -> Reply:
        """202 once ``work`` is done, or the error it ended with as Mesos answers it."""
        try:
            await work
        except (CallError, HttpError, APIError, ServerUnreachable) as err:
            return _refusal(kind, err)
        return _ACCEPTED

    async def _may_subscribe(self, call: Call, caller: Principal) -> None:
        """FrameworkInfo.principal is the caller's (filled in when absent, as Mesos
        does), and the caller may register a framework in each of its roles."""
        info = call.body.get("framework_info") or {}
        check_info(info)
        if self.auth.enabled:
            principal = info.setdefault("principal", caller.name)
            if principal != caller.name:
                raise HttpError(400, f"Authenticated principal '{caller.name}' does not match "
                                     f"principal '{principal}' set in `FrameworkInfo`")
        roles = [str(r) for r in framework_spec(info)["roles"]]
        denied = [r for r in roles if not await self.auth.allowed(caller, REGISTER, ROLES, r)]
        if denied:
            names = ", ".join(f"'{r}'" for r in denied)
            raise HttpError(403, f"Not authorized to use role{'s' if len(denied) > 1 else ''} "
                                 f"{names}: {caller.name} may not {REGISTER} "
                                 f"{ROLES}.corral.dev/{denied[0]}")

    async def _state(self, request: Request) -> Answer:
        master = self._leading()
        if master is None:
            return await self._not_leader(request.path)
        return _json(master_state(master, self.url, self.started))

    async def _redirect(self, request: Request) -> Answer:
        if self._leading() is not None:
            return Reply(307, headers=[("Location", _location(self.url, ""))])
        return await self._not_leader("")

    # -- helpers -------------------------------------------------------------------------

    def _leading(self) -> MesosMaster | None:
        master = self.master
        return master if master is not None and master.ready.is_set() else None

    async def _not_leader(self, path: str) -> Answer:
        leader = await self._leader_url()
        if not leader or leader == self.url:
            return Reply.text(503, "No leader elected")
        return Reply(307, headers=[("Location", _location(leader, path))])

    async def _leader_url(self) -> str:
        """The leader's endpoint, from its Lease; "" when none can be named in
        LEADER_LOOKUP_SECONDS (a store without quorum must not hang the caller)."""
        try:
            lease = await asyncio.wait_for(
                self.client.get("Lease", LEASE_NAME, LEASE_NAMESPACE), LEADER_LOOKUP_SECONDS)
        except (NotFound, APIError, ServerUnreachable, TimeoutError):
            return ""
        return url_of_identity(str(spec(lease).get("holderIdentity") or ""))


_ACCEPTED = Reply(202)


def _refusal(kind: str, err: Exception) -> Reply:
    """A call's error as Mesos answers it: malformed 400, refused with its code, the
    store out of reach 503."""
    if isinstance(err, CallError):
        return Reply.text(400, str(err))
    if isinstance(err, HttpError):
        return Reply.text(err.code, err.message)
    log.warning("mesos call failed type=%s error=%s", kind, err)
    return Reply.text(503, f"The master could not record the call: {err}")


def _json(body: Obj) -> Reply:
    return Reply.json(200, orjson.dumps(body))


def _check_headers(request: Request) -> Reply | None:
    """Content-Type and Accept as Mesos checks them (415, 406); a framework sends
    the same two with every call, so the answer is kept for the pair."""
    headers = request.headers
    pair = (headers.get("content-type", ""), headers.get("accept", ""))
    try:
        return _CHECKED[pair]
    except KeyError:
        answer = _check_types(*pair)
    if len(_CHECKED) < _CHECKED_KEPT:
        _CHECKED[pair] = answer
    return answer


_CHECKED: dict[tuple[str, str], Reply | None] = {}
_CHECKED_KEPT = 64


def _check_types(content_type: str, accept: str) -> Reply | None:
    content_type = content_type.split(";")[0].strip().lower()
    if not content_type:
        return Reply.text(415, "Expecting 'Content-Type' to be present")
    if content_type == "application/x-protobuf":
        return Reply.text(415, "corral serves the scheduler API in JSON only: send "
                               "Content-Type: application/json")
    if content_type != "application/json":
        return Reply.text(415, f"Expecting 'Content-Type' of application/json, got "
                               f"'{content_type}'")
    if accept and not any(part.split(";")[0].strip() in ("application/json", "*/*",
                                                          "application/*")
                          for part in accept.split(",")):
        return Reply.text(406, "Expecting 'Accept' to allow application/json")
    return None


def _location(url: str, path: str) -> str:
    """Mesos' redirect form: scheme-relative, "//host:port/path"."""
    return f"//{urlsplit(url).netloc}{path}"
