"""The agent's own HTTPS server on <node-ip>:<port>, as the kubelet's:

    GET /healthz                                           open
    GET /containerLogs/{ns}/{pod}/{container}              the master only
        ?follow=true&tailLines=N&previous=true&timestamps=true
         &sinceSeconds=N|sinceTime=RFC3339&limitBytes=N
        text/plain; chunked and open while following (until the instance exits)
    GET /allocLogs/{ns}/{alloc}/{task}                     the master only
        ?follow=true&tailLines=N&timestamps=true   one task's lines of an Alloc's log
    GET /stats/summary                                     the master only
    GET /frameworkTasks, POST /frameworkTasks/{ns}/{alloc}  the master only: the Mesos
                                                           master's direct line to the
                                                           node's framework tasks
                                                           (framework_feed.py)
    GET /metrics                                           the master only; Prometheus
                                                           text (corral/agent/metrics.py)
    websocket /exec|/attach/{ns}/{pod}/{container}, /portForward/{ns}/{pod}
                                                           the master only (streams/)

The master proxies `pods/{name}/log|exec|attach|portforward` and
`nodes/{name}/proxy/...` here, having authorized the caller itself. "The master
only": the client certificate the cluster CA gave the master (CN
kube-apiserver-kubelet-client), checked in the TLS handshake (CA) and here (the
name). No token is accepted, so none is ever sent on to the master to be
checked: a stranger's requests cost this server a TLS handshake and no more.
The serving certificate is the node's own (serving_cert.py). A cluster without
TLS (a master on --insecure-http) has no CA: then plain HTTP, open, as the
master is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, cast

import uvicorn
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Scope
from starlette.websockets import WebSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from corral.agent.allocs import AllocManager
from corral.agent.config import AgentConfig
from corral.agent.framework_lane import Answer, FrameworkLane, LaneProtocol
from corral.agent.master_terms import MasterTerms
from corral.agent.metrics import AGENT_METRICS
from corral.agent.pods import PodManager, not_on_node
from corral.agent.runtime.logs import LogFiles, rfc3339_nano
from corral.agent.serving_cert import ServingFiles
from corral.agent.stats import StatsCollector
from corral.agent.streams.endpoints import StreamEndpoints
from corral.api.certificates.signer import KUBELET_CLIENT_CN
from corral.api.connections import (
    ConnectionLimits,
    OneWrite,
    TlsWebSocketProtocol,
    guarded_protocol,
)
from corral.api.quiet_server import QuietServer
from corral.api.x509_auth import certificate_identity
from corral.objects import parse_time

log = logging.getLogger(__name__)

PORT_FILE = "server-port"  # under the state dir: the port of --port 0 last time

Handler = Callable[[Request], Awaitable[Response]]
WebSocketHandler = Callable[[WebSocket], Awaitable[None]]


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true")


def _tail(request: Request) -> int | None:
    raw = request.query_params.get("tailLines")
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def _since(request: Request) -> str:
    """The earliest log time asked for, as a CRI stamp ("" for all); the master
    has checked the values."""
    seconds = request.query_params.get("sinceSeconds")
    when = request.query_params.get("sinceTime")
    if seconds:
        return rfc3339_nano(time.time_ns() - int(seconds) * 1_000_000_000)
    if when:
        parsed = parse_time(when)
        return rfc3339_nano(int(parsed.timestamp()) * 1_000_000_000) if parsed else ""
    return ""


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limitBytes")
    return int(raw) if raw else None


async def _limited(chunks: AsyncIterator[bytes], limit: int | None) -> AsyncIterator[bytes]:
    """Stop once limit bytes were sent, as the kubelet does (mid-line if need be)."""
    left = limit
    async for chunk in chunks:
        if left is not None:
            chunk = chunk[:left]
            left -= len(chunk)
        if chunk:
            yield chunk
        if left is not None and left <= 0:
            return


def _bound(cfg: AgentConfig) -> socket.socket:
    """The server's socket, bound. With --port 0, the port the agent had before when
    it is still free: a restarted agent keeps the address its Node shows, so the
    master's logs, exec and framework links reach it at once, not after its next
    status (the kubelet keeps its fixed port for the same reason)."""
    sock = socket.socket(socket.AF_INET6 if ":" in cfg.node_ip else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if not cfg.port:
        with contextlib.suppress(OSError, ValueError):
            sock.bind((cfg.node_ip, int((cfg.state_dir / PORT_FILE).read_text())))
            return sock
    sock.bind((cfg.node_ip, cfg.port))
    return sock


def _text(message: str, code: int) -> Response:
    return PlainTextResponse(message + "\n", status_code=code)


def _caller(scope: Scope) -> str | None:
    """Who the TLS client certificate says is calling, if it showed one."""
    identity = certificate_identity(scope)
    return identity[0] if identity else None


class AgentServer:
    def __init__(self, cfg: AgentConfig, pods: PodManager, stats: StatsCollector) -> None:
        self.cfg = cfg
        self.pods = pods
        self.stats = stats
        self.tls: ServingFiles | None = None  # set by start(); None: plain HTTP
        self.allocs: AllocManager | None = None  # set once the agent runs allocs
        self.terms = MasterTerms()
        self.socket = _bound(cfg)
        self.port = int(self.socket.getsockname()[1])
        if not cfg.port:
            (cfg.state_dir / PORT_FILE).write_text(f"{self.port}\n")
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def app(self) -> FrameworkLane:
        streams = StreamEndpoints(self.cfg.name, self.pods)
        routes: list[BaseRoute] = [
            Route("/healthz", self._healthz),
            Route("/containerLogs/{namespace}/{pod}/{container}", self._guard(self._logs)),
            Route("/allocLogs/{namespace}/{alloc}/{task}", self._guard(self._alloc_logs)),
            Route("/stats/summary", self._guard(self._summary)),
            Route("/metrics", self._guard(self._metrics)),
        ]
        routes += [WebSocketRoute(r.path, self._guard_ws(r.endpoint)) for r in streams.routes()]
        # The Mesos master's direct line goes around Starlette (framework_lane.py).
        return FrameworkLane(Starlette(routes=routes), self._master_refusal,
                             self._framework_launch, self._framework_feed)

    def _master_refusal(self, scope: Scope) -> Answer | None:
        """The Mesos master's line: its certificate, then its term (master_terms.py)."""
        return self._refusal(scope) or self.terms.refusal(scope)

    def _refusal(self, scope: Scope) -> Answer | None:
        if self.tls is None:
            return None
        caller = _caller(scope)
        if caller == KUBELET_CLIENT_CN:
            return None
        if caller is None:
            return 401, "Unauthorized: this agent answers only the master's client certificate"
        return 403, f"Forbidden: {caller!r} is not the master ({KUBELET_CLIENT_CN})"

    def _refusal_response(self, scope: Scope) -> Response | None:
        refused = self._refusal(scope)
        return _text(refused[1], refused[0]) if refused is not None else None

    def _guard_ws(self, handler: WebSocketHandler) -> WebSocketHandler:
        async def guarded(ws: WebSocket) -> None:
            refusal = self._refusal_response(ws.scope)
            if refusal is not None:
                await ws.send_denial_response(refusal)
                return
            await handler(ws)
        return guarded

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            return self._refusal_response(request.scope) or await handler(request)
        return guarded

    async def _healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def _summary(self, request: Request) -> Response:
        return JSONResponse(await self.stats.summary())

    async def _metrics(self, request: Request) -> Response:
        return Response(generate_latest(AGENT_METRICS.registry),
                        headers={"content-type": CONTENT_TYPE_PLAIN_0_0_4})

    async def _logs(self, request: Request) -> Response:
        ns, pod, container = (request.path_params[k] for k in ("namespace", "pod", "container"))
        worker = self.pods.find(ns, pod)
        if worker is None:
            code, text = not_on_node(f'pod "{pod}"', self.cfg.name, self.pods.listed)
            return _text(text, code)
        if container not in {t.name for t in worker.tracks}:
            return _text(f'container "{container}" in pod "{pod}" is not valid', 400)
        previous = _flag(request, "previous")
        files = LogFiles(worker.log_dir(container))
        attempt = files.instance(previous=previous)
        if attempt is None:
            what = "previous terminated container" if previous else "container"
            return _text(f'{what} "{container}" in pod "{pod}" not found', 400)
        tail, stamps = _tail(request), _flag(request, "timestamps")
        since, limit = _since(request), _limit(request)
        if not _flag(request, "follow"):
            lines = await asyncio.to_thread(files.read, attempt, tail, stamps, None, since)
            body = "".join(f"{line}\n" for line in lines).encode()
            return Response(body[:limit], media_type="text/plain")
        cid = f"{worker.uid}_{container}_{attempt}"
        runtime = self.pods.ctx.runtime

        def finished() -> bool:
            return previous or runtime.exited(cid)

        async def stream() -> AsyncIterator[bytes]:
            async for line in files.follow(attempt, tail, stamps, finished=finished,
                                           since=since):
                yield f"{line}\n".encode()

        return StreamingResponse(_limited(stream(), limit), media_type="text/plain")

    def _framework_feed(self) -> AsyncGenerator[bytes, None] | None:
        if self.allocs is None:
            return None
        return self.allocs.ctx.feed.stream(self.allocs.feed_snapshot)

    def _framework_launch(self, ns: str, name: str, body: Any) -> tuple[int, Any]:
        """A launch's answer: its status and JSON, or the text that says why not."""
        try:
            uid, tasks = str(body["uid"]), list(body.get("tasks") or [])
            kills = {str(k): None if v is None else float(v)
                     for k, v in dict(body.get("kills") or {}).items()}
            size = {str(k): str(v) for k, v in dict(body.get("resources") or {}).items()}
            if not all(isinstance(t, dict) and t.get("id") for t in tasks):
                raise ValueError("every task needs an id")
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            return 400, f"malformed launch: {err}"
        worker = self.allocs.find(ns, name) if self.allocs is not None else None
        if worker is None:
            return not_on_node(f'alloc "{name}"', self.cfg.name,
                               self.allocs is not None and self.allocs.listed)
        if worker.uid != uid:
            return 409, f'alloc "{name}" on node {self.cfg.name} has uid {worker.uid}'
        try:
            launched = worker.launch_direct(tasks, kills, size)
        except LookupError as err:
            return 409, f'alloc "{name}": {err}'
        except (ValueError, KeyError) as err:
            return 400, f"malformed resources: {err}"
        AGENT_METRICS.direct_launches.inc(len(launched))
        return 200, {"launched": launched}

    async def _alloc_logs(self, request: Request) -> Response:
        ns, name, task = (request.path_params[k] for k in ("namespace", "alloc", "task"))
        if self.allocs is None:
            return _text(f'alloc "{name}" not found on node {self.cfg.name}', 404)
        worker = self.allocs.find(ns, name)
        executors = self.allocs.ctx.executors
        retired = executors.retired_logs(ns, name)
        if worker is None and not retired.exists():
            code, text = not_on_node(f'alloc "{name}"', self.cfg.name, self.allocs.listed)
            return _text(text, code)
        files = LogFiles(executors.dir(worker.uid).task_logs if worker else retired)
        tail, stamps = _tail(request), _flag(request, "timestamps")
        if worker is None or not _flag(request, "follow"):
            lines = await asyncio.to_thread(files.read, 0, tail, stamps, task)
            return PlainTextResponse("".join(f"{line}\n" for line in lines))

        async def stream() -> AsyncIterator[bytes]:
            async for line in files.follow(0, tail, stamps, finished=lambda: worker.task_done(
                    task), stream=task):
                yield f"{line}\n".encode()

        return StreamingResponse(stream(), media_type="text/plain")

    @property
    def started(self) -> bool:
        return self._server is not None and self._server.started

    async def start(self, tls: ServingFiles | None) -> None:
        """Serve HTTPS with the node's certificate (the master's client certificate
        checked against the CA in the handshake), or plain HTTP without a CA."""
        self.tls = tls
        ssl_options: dict[str, Any] = {}
        if tls is not None:
            ssl_options = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key),
                           "ssl_ca_certs": str(tls.ca), "ssl_cert_reqs": ssl.CERT_OPTIONAL}
        app = self.app()
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=1,
                                # Only the master calls, never through a proxy.
                                proxy_headers=False, server_header=False,
                                http=_one_write_protocol(app),
                                ws=TlsWebSocketProtocol, **ssl_options)
        self._server = QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self.socket]))
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
            await asyncio.sleep(0.01)
        log.info("agent server listening address=%s:%d tls=%s", self.cfg.node_ip, self.port,
                 tls is not None)

    def reload_tls(self) -> None:
        """Show the renewed serving certificate (same files) to new connections:
        the listening socket's SSLContext takes the new pair, as the kubelet's
        GetCertificate callback hands out the current one."""
        context = self._server.config.ssl if self._server is not None else None
        if self.tls is None or context is None:
            return
        context.load_cert_chain(str(self.tls.cert), str(self.tls.key))

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # followers of logs would hold it open
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.socket.close()


def _one_write_protocol(lane: FrameworkLane) -> type[HttpToolsProtocol]:
    """The guarded protocol (connections.py) writing each turn's output at once
    (OneWrite): the master's launch is answered in one TLS record, not two; and
    the launch itself without an ASGI task (framework_lane.LaneProtocol, below
    the guard)."""
    guarded = guarded_protocol(ConnectionLimits())

    class OneWriteProtocol(guarded, LaneProtocol):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(cast(asyncio.Transport, OneWrite(cast(asyncio.Transport, transport))))

    OneWriteProtocol.lane = lane
    return OneWriteProtocol
