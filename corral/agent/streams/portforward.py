"""``kubectl port-forward`` on the node: SPDY streams ↔ TCP to the pod's ports.

The protocol is Kubernetes' ``portforward.k8s.io`` over SPDY/3.1 (spdy.py),
tunnelled in a websocket. Per forwarded connection the client opens two streams
with the same ``requestID``:

    SYN_STREAM streamType=error port=P requestID=R   client closes its side at once
    SYN_STREAM streamType=data  port=P requestID=R   bytes both ways

Each SYN_STREAM is answered with a SYN_REPLY at once (the client waits for it
before opening the next). Once both streams of a request are there, the agent
connects to the host port it allocated for container port P (a pod's ports are
corral's host ports, see agent/pod_ports.py) and copies bytes: the client's FIN
half-closes the connection, the pod's EOF ends the data stream with FIN, and the
error stream is closed after it — carrying, when the connection failed, the
kubelet's ``error forwarding port P to pod NAME, uid UID: ...`` (kubectl prints
it and gives up the forward). PINGs are echoed; a GOAWAY ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketDisconnect

from corral.agent.streams.spdy import Codec, Frame, Kind, ProtocolError, RstStatus

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
# The same between master and agent: the `websockets` client the master relays
# with takes only RFC 6455 tokens as subprotocols, and "/" is not a token character.
HOP_PROTOCOL = PROTOCOL.replace("/", "_")
CHUNK = 32 * 1024
INBOUND_CHUNKS = 16  # frames from the client queued per connection before reading waits

# container port → (host, port) to connect to; raises LookupError for a port the
# pod does not declare.
Resolver = Callable[[int], tuple[str, int]]


@dataclass
class _Request:
    """The two streams of one forwarded connection."""

    port: str
    error_id: int = 0
    data_id: int = 0
    inbound: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(INBOUND_CHUNKS))
    task: asyncio.Task[None] | None = None


class PortForwardSession:
    def __init__(self, ws: WebSocket, resolve: Resolver, pod: str, uid: str) -> None:
        self.ws = ws
        self.resolve = resolve
        self.pod = pod
        self.uid = uid
        self.codec = Codec()
        self._send_lock = asyncio.Lock()
        self._requests: dict[str, _Request] = {}
        self._by_stream: dict[int, _Request] = {}

    async def run(self) -> None:
        try:
            await self._read_frames()
        except (WebSocketDisconnect, ProtocolError, OSError) as err:
            log.info("port-forward session ended pod=%s reason=%r", self.pod, err)
        finally:
            tasks = [r.task for r in self._requests.values() if r.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read_frames(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            for frame in self.codec.feed(message.get("bytes") or b""):
                if not await self._on_frame(frame):
                    return

    async def _send(self, encode: Callable[[], bytes]) -> None:
        # Encoding under the lock: header compression is one stream, in send order.
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.ws.send_bytes(encode())

    async def _send_data(self, stream_id: int, payload: bytes, fin: bool = False) -> None:
        await self._send(lambda: Codec.data(stream_id, payload, fin))

    async def _on_frame(self, frame: Frame) -> bool:
        """Handle one frame; False ends the session."""
        if frame.kind is Kind.SYN_STREAM:
            await self._on_stream(frame)
        elif frame.kind is Kind.DATA:
            request = self._by_stream.get(frame.stream_id)
            if request is not None and frame.stream_id == request.data_id:
                if frame.data:
                    await self._deliver(request, frame.data)
                if frame.fin:
                    await self._deliver(request, None)
        elif frame.kind is Kind.RST_STREAM:
            request = self._by_stream.get(frame.stream_id)
            if request is not None and request.task is not None:
                request.task.cancel()
        elif frame.kind is Kind.PING:
            await self._send(lambda: self.codec.ping(frame.value))
        elif frame.kind is Kind.GOAWAY:
            return False
        return True

    @staticmethod
    async def _deliver(request: _Request, data: bytes | None) -> None:
        """Queue bytes for the pod; while its queue is full, reading the session
        waits (as spdystream's frame handler does), unless the forward ends."""
        if request.task is None:  # its error stream is not there yet (kubectl sends it first)
            if not request.inbound.full():
                request.inbound.put_nowait(data)
            return
        if request.task.done():
            return
        put = asyncio.ensure_future(request.inbound.put(data))
        await asyncio.wait({put, request.task}, return_when=asyncio.FIRST_COMPLETED)
        put.cancel()

    async def _on_stream(self, frame: Frame) -> None:
        sid, headers = frame.stream_id, frame.headers
        kind, port, rid = (headers.get(k, "") for k in ("streamtype", "port", "requestid"))
        if kind not in ("error", "data") or not port:
            await self._send(lambda: self.codec.rst_stream(sid, RstStatus.PROTOCOL_ERROR))
            return
        await self._send(lambda: self.codec.syn_reply(sid))
        request = self._requests.setdefault(rid or f"port-{port}", _Request(port))
        if kind == "error":
            request.error_id = sid
        else:
            request.data_id = sid
        self._by_stream[sid] = request
        if request.error_id and request.data_id and request.task is None:
            request.task = asyncio.create_task(self._forward(rid, request))

    async def _forward(self, rid: str, request: _Request) -> None:
        try:
            error = await self._copy(request)
        except asyncio.CancelledError:
            error = None
        if error:
            message = f"error forwarding port {request.port} to pod {self.pod}, " \
                      f"uid {self.uid}: {error}"
            await self._send_data(request.error_id, message.encode())
        await self._send_data(request.data_id, b"", fin=True)
        await self._send_data(request.error_id, b"", fin=True)
        self._requests.pop(rid, None)
        self._by_stream.pop(request.error_id, None)
        self._by_stream.pop(request.data_id, None)

    async def _copy(self, request: _Request) -> str | None:
        """Connect and copy until the pod's side ends; an error message if it failed."""
        try:
            host, port = self.resolve(int(request.port))
        except (LookupError, ValueError) as err:
            return str(err)
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as err:
            return f"failed to connect to {host}:{port}: {err.strerror or err}"
        inbound = asyncio.create_task(self._to_pod(request, writer))
        try:
            while chunk := await reader.read(CHUNK):
                await self._send_data(request.data_id, chunk)
        except OSError:
            pass
        finally:
            inbound.cancel()
            await asyncio.gather(inbound, return_exceptions=True)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return None

    @staticmethod
    async def _to_pod(request: _Request, writer: asyncio.StreamWriter) -> None:
        while (chunk := await request.inbound.get()) is not None:
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # the client is done sending: half-close, keep reading
