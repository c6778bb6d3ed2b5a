"""The agent's streaming endpoints, as the kubelet's (websockets, bearer token):

    /exec/{ns}/{pod}/{container}?command=..&stdin&stdout&stderr&tty   channels.py
    /attach/{ns}/{pod}/{container}?stdin&stdout&stderr&tty            channels.py
    /portForward/{ns}/{pod}[?ports=P,..]        SPDY tunnel, or channels (Python clients)

The master relays ``pods/{name}/exec|attach|portforward`` here (api/handlers/
streams.py). A request the agent cannot serve is refused before the upgrade
with an HTTP error whose text the master turns into a Status.
"""

from __future__ import annotations

import logging

from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from corral.agent.container_track import ContainerTrack
from corral.agent.pod_worker import PodWorker
from corral.agent.pods import PodManager, not_on_node
from corral.agent.runtime.logs import LogFiles
from corral.agent.streams import channels
from corral.agent.streams.attach import AttachSession
from corral.agent.streams.exec import ExecError, ExecOptions, ExecSession
from corral.agent.streams.portforward import HOP_PROTOCOL as PORTFORWARD
from corral.agent.streams.portforward import PortForwardSession
from corral.agent.streams.portforward_channels import ChannelPortForward, parse_ports

log = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def _deny(ws: WebSocket, code: int, message: str) -> None:
    await ws.send_denial_response(PlainTextResponse(message + "\n", status_code=code))


class StreamEndpoints:
    def __init__(self, node: str, pods: PodManager) -> None:
        self.node = node
        self.pods = pods

    def routes(self) -> list[WebSocketRoute]:
        return [
            WebSocketRoute("/exec/{namespace}/{pod}/{container}", self.exec),
            WebSocketRoute("/attach/{namespace}/{pod}/{container}", self.attach),
            WebSocketRoute("/portForward/{namespace}/{pod}", self.port_forward),
        ]

    def _worker(self, ws: WebSocket) -> PodWorker:
        ns, pod = ws.path_params["namespace"], ws.path_params["pod"]
        worker = self.pods.find(ns, pod)
        if worker is None:
            raise Refused(*not_on_node(f'pod "{pod}"', self.node, self.pods.listed))
        return worker

    def _running(self, ws: WebSocket) -> tuple[PodWorker, ContainerTrack]:
        worker, name = self._worker(ws), ws.path_params["container"]
        track = next((t for t in worker.tracks if t.name == name), None)
        if track is None:
            raise Refused(400, f'container "{name}" in pod "{worker.name}" is not valid')
        if not track.running or track.current is None:
            raise Refused(400, f'container not found ("{name}"): it is not running')
        return worker, track

    def _protocol(self, ws: WebSocket) -> str:
        protocol = channels.negotiate(list(ws.scope.get("subprotocols") or []))
        if protocol is None:
            raise Refused(400, "websocket subprotocol must be one of "
                          + ", ".join(channels.PROTOCOLS))
        return protocol

    async def exec(self, ws: WebSocket) -> None:
        try:
            worker, track = self._running(ws)
            protocol = self._protocol(ws)
            assert track.current is not None
            env = self.pods.ctx.runtime.exec_environment(track.current.container_id)
            opts = ExecOptions.from_query(ws.query_params.getlist("command"), ws.query_params)
        except Refused as refused:
            await _deny(ws, refused.code, refused.message)
            return
        await ws.accept(subprotocol=protocol)
        sock = channels.ChannelSocket(ws, protocol)
        session = ExecSession(opts, env)
        try:
            await session.start(sock)
        except ExecError as err:  # as the kubelet: upgraded, and the Status says why
            await sock.finish(channels.failure(str(err)))
            return
        log.info("exec pod=%s/%s container=%s command=%r tty=%s", worker.namespace,
                 worker.name, track.name, opts.command[:1], opts.tty)
        status = await session.run(sock)
        if status is not None:
            await sock.finish(status)

    async def attach(self, ws: WebSocket) -> None:
        try:
            worker, track = self._running(ws)
            protocol = self._protocol(ws)
        except Refused as refused:
            await _deny(ws, refused.code, refused.message)
            return
        assert track.current is not None
        cid, runtime = track.current.container_id, self.pods.ctx.runtime
        target = runtime.attach_target(cid)
        opts = ExecOptions.from_query([], ws.query_params)
        await ws.accept(subprotocol=protocol)
        sock = channels.ChannelSocket(ws, protocol)
        session = AttachSession(sock, LogFiles(worker.log_dir(track.name)),
                                track.current.attempt, lambda: runtime.exited(cid),
                                target, opts, lambda: runtime.close_stdin(cid))
        status = await session.run()
        if opts.stdin and target.stdin_once:
            runtime.close_stdin(cid)
        if status is not None:
            await sock.finish(status)

    async def port_forward(self, ws: WebSocket) -> None:
        """kubectl's SPDY tunnel, or the channel protocol of the Python clients."""
        offered = list(ws.scope.get("subprotocols") or [])
        try:
            worker = self._worker(ws)
            spdy = PORTFORWARD in offered
            # Offering nothing gets the channel protocol (its v1), as from the kubelet.
            protocol = PORTFORWARD if spdy else channels.V4 if channels.V4 in offered else ""
            if offered and not protocol:
                raise Refused(400, f"websocket subprotocol must be {PORTFORWARD} "
                              f"or {channels.V4}")
            ports = [] if spdy else parse_ports(ws.query_params.getlist("ports"))
        except Refused as refused:
            await _deny(ws, refused.code, refused.message)
            return
        except ValueError as err:
            await _deny(ws, 400, str(err))
            return
        await ws.accept(subprotocol=protocol or None)

        def resolve(port: int) -> tuple[str, int]:
            for m in worker.ports.mappings:
                if m.get("containerPort") == port and m.get("protocol", "TCP") == "TCP":
                    return str(m["hostIP"]), int(m["hostPort"])
            raise LookupError(f"port {port} is not a TCP containerPort of pod "
                              f"{worker.namespace}/{worker.name}")

        if spdy:
            await PortForwardSession(ws, resolve, worker.name, worker.uid).run()
        else:
            sock = channels.ChannelSocket(ws, protocol)
            await ChannelPortForward(sock, resolve, worker.name, worker.uid).run(ports)
