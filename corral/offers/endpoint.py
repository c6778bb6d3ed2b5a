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

Every master serves it; only the one leading the offer allocator (its Lease,
component.py) acts. A standby answers 307 with the leader's address (found in
the Lease's holder identity), or 503 while no master leads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from corral.api.errors import APIError, NotFound
from corral.client.http import Client, ServerUnreachable
from corral.client.leaderelection import LEASE_NAMESPACE
from corral.objects import spec
from corral.offers.auth import CHALLENGE, REGISTER, ROLES, FrameworkAuth, Principal
from corral.offers.frameworks import check_info, framework_spec
from corral.offers.master import HttpError, MesosMaster
from corral.offers.protocol import VERSION, Call, CallError
from corral.offers.state import master_state
from corral.offers.stream import Stream

log = logging.getLogger("corral.offers")

LEASE_NAME = "corral-mesos-master"
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


class MesosEndpoint:
    """The Starlette app; ``master`` is set while this process leads."""

    def __init__(self, client: Client, url: str, auth: FrameworkAuth) -> None:
        self.client = client
        self.url = url
        self.auth = auth
        self.master: MesosMaster | None = None
        self.started = time.time()
        self.app = Starlette(routes=[
            Route("/version", self._version, methods=["GET"]),
            Route("/api/v1/scheduler", self._scheduler, methods=["POST"]),
            Route("/master/api/v1/scheduler", self._scheduler, methods=["POST"]),
            Route("/master/state", self._state, methods=["GET"]),
            Route("/state", self._state, methods=["GET"]),
            Route("/master/state.json", self._state, methods=["GET"]),
            Route("/master/redirect", self._redirect, methods=["GET"]),
            Route("/redirect", self._redirect, methods=["GET"]),
        ])

    # -- routes -------------------------------------------------------------------------

    async def _version(self, request: Request) -> Response:
        return JSONResponse({"version": VERSION, "build_date": "", "build_time": 0,
                             "build_user": "corral", "git_sha": "", "git_branch": ""})

    async def _scheduler(self, request: Request) -> Response:
        try:
            caller = await self.auth.authenticate(request.headers.get("authorization"))
        except (APIError, ServerUnreachable) as err:
            return PlainTextResponse(f"The master could not authenticate the call: {err}", 503)
        if caller is None:
            return Response(status_code=401, headers={"WWW-Authenticate": CHALLENGE})
        refused = _check_headers(request)
        if refused is not None:
            return refused
        master = self._leading()
        if master is None:
            return await self._not_leader(request.url.path)
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse(f"Request body is larger than {MAX_BODY} bytes", 413)
        kind = ""
        try:
            call = Call.parse(body)
            kind = call.type
            if call.type == "SUBSCRIBE":
                await self._may_subscribe(call, caller)
                return self._subscribed(master, await master.subscribe(call, caller))
            await master.handle(call, request.headers.get(STREAM_HEADER), caller)
        except CallError as err:
            return PlainTextResponse(str(err), 400)
        except HttpError as err:
            return PlainTextResponse(err.message, err.code)
        except (APIError, ServerUnreachable) as err:
            log.warning("mesos call failed type=%s error=%s", kind, err)
            return PlainTextResponse(f"The master could not record the call: {err}", 503)
        return Response(status_code=202)

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

    async def _state(self, request: Request) -> Response:
        master = self._leading()
        if master is None:
            return await self._not_leader(request.url.path)
        return JSONResponse(master_state(master, self.url, self.started))

    async def _redirect(self, request: Request) -> Response:
        if self._leading() is not None:
            return Response(status_code=307, headers={"Location": _location(self.url, "")})
        return await self._not_leader("")

    # -- helpers -------------------------------------------------------------------------

    def _leading(self) -> MesosMaster | None:
        master = self.master
        return master if master is not None and master.ready.is_set() else None

    async def _not_leader(self, path: str) -> Response:
        leader = await self._leader_url()
        if not leader or leader == self.url:
            return PlainTextResponse("No leader elected", 503)
        return Response(status_code=307, headers={"Location": _location(leader, path)})

    async def _leader_url(self) -> str:
        """The leader's endpoint, from its Lease; "" when none can be named in
        LEADER_LOOKUP_SECONDS (a store without quorum must not hang the caller)."""
        try:
            lease = await asyncio.wait_for(
                self.client.get("Lease", LEASE_NAME, LEASE_NAMESPACE), LEADER_LOOKUP_SECONDS)
        except (NotFound, APIError, ServerUnreachable, TimeoutError):
            return ""
        return url_of_identity(str(spec(lease).get("holderIdentity") or ""))

    def _subscribed(self, master: MesosMaster, stream: Stream) -> Response:
        async def records() -> AsyncIterator[bytes]:
            try:
                async for record in stream.records():
                    yield record
            finally:
                master.disconnected(stream)

        return StreamingResponse(records(), status_code=200, media_type="application/json",
                                 headers={STREAM_HEADER: stream.id})


def _check_headers(request: Request) -> Response | None:
    """Content-Type and Accept as Mesos checks them (415, 406)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type:
        return PlainTextResponse("Expecting 'Content-Type' to be present", 415)
    if content_type == "application/x-protobuf":
        return PlainTextResponse("corral serves the scheduler API in JSON only: send "
                                 "Content-Type: application/json", 415)
    if content_type != "application/json":
        return PlainTextResponse(f"Expecting 'Content-Type' of application/json, got "
                                 f"'{content_type}'", 415)
    accept = request.headers.get("accept", "")
    if accept and not any(part.split(";")[0].strip() in ("application/json", "*/*",
                                                          "application/*")
                          for part in accept.split(",")):
        return PlainTextResponse("Expecting 'Accept' to allow application/json", 406)
    return None


def _location(url: str, path: str) -> str:
    """Mesos' redirect form: scheme-relative, "//host:port/path"."""
    return f"//{urlsplit(url).netloc}{path}"
