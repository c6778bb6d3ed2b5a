"""The Mesos endpoint's own HTTP/1.1 server: asyncio and httptools, nothing between
the socket and the endpoint's handler.

    connection ─► httptools ─► Request(method, path, headers, body)
        ─► handler(request), called inside the read that completed the request: a
           Reply at once (a call that never waits: ACKNOWLEDGE, DECLINE, ...: no
           task), or a coroutine for what must wait, run as a task
        ─► Reply: status, headers, Content-Length body, in request order (pipelining)
        ─► StreamReply (SUBSCRIBE): 200, chunked; the connection is the stream's from
           then on (stream.py writes its records straight to it)

A framework makes ~3 calls a task (ACKNOWLEDGEs); through uvicorn and Starlette each
cost the master more than the work it asked for (a task, an ASGI scope, middleware
layers, a receive/send channel): the offers bench measured ~0.5-1 ms of the
master's CPU a call. Here a call is a parse, a dict and a write.

Limits (what uvicorn and the API server's connection guard gave): MAX_CONNECTIONS
open at once (more are closed at once), request headers within HEADER_TIMEOUT and
MAX_HEADER_BYTES (431), a body of at most the handler's ``max_body`` (413), an idle
keep-alive connection closed after IDLE_TIMEOUT. A malformed request is answered
400 and its connection closed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol, cast

import httptools

log = logging.getLogger("corral.offers")

MAX_CONNECTIONS = 1024
MAX_HEADER_BYTES = 64 * 1024
HEADER_TIMEOUT = 10.0  # seconds from a request's first byte (or the connect) to its headers
IDLE_TIMEOUT = 120.0  # a keep-alive connection with no request (uvicorn's was the same)
PIPELINED = 64  # requests read ahead of their answers before reading pauses


@dataclass
class Request:
    method: str
    path: str  # without the query
    headers: dict[str, str]  # names lower-cased; a repeated header's values joined by ", "
    body: bytes = b""
    connection: object = None  # the same object for every request of one connection


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, message: str) -> Reply:
        return cls(status, message.encode(), "text/plain; charset=utf-8")

    @classmethod
    def json(cls, status: int, body: bytes) -> Reply:
        return cls(status, body, "application/json")


class ChunkSink(Protocol):
    """Where a StreamReply's body goes: each write is one chunk."""

    def write(self, data: bytes) -> None: ...
    def end(self) -> None: ...
    def backlog(self) -> int: ...


@dataclass
class StreamReply:
    """200 with a chunked body: ``attach`` is called with the sink once the headers
    are out; ``lost`` when the connection ends (either side)."""

    attach: Callable[[ChunkSink], None]
    lost: Callable[[], None]
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


Answer = Reply | StreamReply
# A handler answers at once, or hands back the coroutine that will.
Handler = Callable[[Request], "Answer | Coroutine[Any, Any, Answer]"]


class HttpServer:
    def __init__(self, handler: Handler, *, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port,
                                                reuse_address=True)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and end every connection (a stream's framework then sees
        its stream end, as when the master goes)."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.loop = asyncio.get_running_loop()
        self.queue: deque[tuple[Request, bool] | Reply] = deque()
        self.busy = False  # a handler runs as a task: later requests wait for it
        self.streaming: StreamReply | None = None
        self.closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # loop time the timer is set for
        self._deadline: float | None = None  # loop time the connection is closed at
        self._reading_paused = False
        self._out: list[bytes] | None = None  # answers held for one write
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_big = False

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        if len(self.server.connections) >= MAX_CONNECTIONS:
            log.warning("mesos endpoint at its connection limit (%d): one refused",
                        MAX_CONNECTIONS)
            self.transport.close()
            self.closing = True
            return
        self.server.connections.add(self)
        self._arm(HEADER_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self._stop_timer()
        if self.streaming is not None:
            stream, self.streaming = self.streaming, None
            stream.lost()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.streaming is not None:
            return  # a stream's client has nothing more to say
        # The answers to what this read completed go out in one write (a framework
        # pipelines its ACKNOWLEDGEs: one read, many calls, one write back).
        self._out = []
        try:
            self._feed(data)
        finally:
            out, self._out = self._out, None
            if out and self.transport is not None and not self.transport.is_closing():
                self.transport.write(b"".join(out))

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Reply.text(400, "Protocol upgrades are not served here"))
        except httptools.HttpParserError as err:
            # A callback's exception reaches here wrapped (httptools' CallbackError).
            refused = err.__context__ if isinstance(err.__context__, _Refused) else None
            self._fail(refused.reply if refused is not None
                       else Reply.text(400, f"Malformed HTTP request: {err}"))
        except _Refused as refused:
            self._fail(refused.reply)

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()
        if not self.busy and not self.queue:
            self._arm(HEADER_TIMEOUT)

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _Refused(Reply.text(431, "Request header fields too large"))
        key = name.lower().decode("latin-1")
        text = value.decode("latin-1")
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        if self._headers.get("expect", "").lower() == "100-continue":
            length = int(self._headers.get("content-length", "0") or 0)
            if length <= self.server.max_body:
                self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self._flush()  # the client waits for it before sending the body

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.server.max_body:
            self._too_big = True
            self._body.clear()
        elif not self._too_big:
            self._body.append(body)

    def on_message_complete(self) -> None:
        keep = self.parser.should_keep_alive()
        if self._too_big:
            self.queue.append(Reply.text(413, f"Request body is larger than "
                                              f"{self.server.max_body} bytes"))
            keep = False
        else:
            path = self._url.decode("latin-1").partition("?")[0]
            method = self.parser.get_method().decode("latin-1")
            self.queue.append((Request(method, path, self._headers, b"".join(self._body),
                                       self), keep))
        if not keep:
            self.queue.append(_CLOSE)
        if len(self.queue) >= PIPELINED and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self._disarm()
        self._next()

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _Refused(Reply.text(431, "Request header fields too large"))

    # -- answering ------------------------------------------------------------------------

    def _next(self) -> None:
        """Answer queued requests in order until one has to wait."""
        while self.queue and not self.busy and not self.closing and self.streaming is None:
            item = self.queue.popleft()
            if item is _CLOSE:
                self.close()
                return
            if isinstance(item, Reply):
                self._send(item, head=False)
                continue
            request, _ = item
            try:
                result = self.server.handler(request)
            except Exception:
                log.exception("mesos endpoint handler failed path=%s", request.path)
                result = Reply.text(500, "Internal Server Error")
            if isinstance(result, (Reply, StreamReply)):
                self._answer(request, result)
                continue
            self.busy = True
            task = self.loop.create_task(result)
            task.add_done_callback(functools.partial(self._finished, request))
        if not self.queue and not self.busy and self.streaming is None and not self.closing:
            if self._reading_paused and self.transport is not None:
                self.transport.resume_reading()
                self._reading_paused = False
            self._arm(IDLE_TIMEOUT)

    def _finished(self, request: Request, task: asyncio.Task[Reply | StreamReply]) -> None:
        self.busy = False
        if task.cancelled():
            self.close()
            return
        err = task.exception()
        if err is not None:
            log.error("mesos endpoint handler failed path=%s", request.path, exc_info=err)
            self._answer(request, Reply.text(500, "Internal Server Error"))
        else:
            self._answer(request, task.result())
        self._next()

    def _answer(self, request: Request, reply: Reply | StreamReply) -> None:
        if self.closing or self.transport is None:
            if isinstance(reply, StreamReply):
                reply.lost()  # the connection went while the stream was being made
            return
        if isinstance(reply, StreamReply):
            self._stream(reply)
        else:
            self._send(reply, head=request.method == "HEAD")

    def _send(self, reply: Reply, *, head: bool) -> None:
        assert self.transport is not None
        self._write(_head(reply) + (b"" if head else reply.body))

    def _stream(self, reply: StreamReply) -> None:
        assert self.transport is not None
        self.streaming = reply
        self._disarm()
        lines = ["HTTP/1.1 200 OK", "transfer-encoding: chunked",
                 f"content-type: {reply.content_type}",
                 *(f"{k}: {v}" for k, v in reply.headers)]
        self._write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self._flush()  # the stream writes to the transport itself from now on
        reply.attach(_Chunks(self))

    def _write(self, data: bytes) -> None:
        if self._out is not None:
            self._out.append(data)
        elif self.transport is not None:
            self.transport.write(data)

    def _flush(self) -> None:
        if self._out and self.transport is not None:
            self.transport.write(b"".join(self._out))
            self._out.clear()

    def _fail(self, reply: Reply) -> None:
        if self.transport is not None and not self.closing and self.streaming is None:
            self._send(reply, head=False)
        self.close()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self._stop_timer()
            self._flush()  # answers held for the read's one write go first
            if self.transport is not None:
                self.transport.close()  # connection_lost follows (ends a stream)

    # -- timeouts -------------------------------------------------------------------------

    # A deadline is moved at every request (twice) and a timer made only when none
    # is set to fire by then: each pipelined ACKNOWLEDGE would otherwise make one
    # timer and cancel another.

    def _arm(self, seconds: float) -> None:
        deadline = self._deadline = self.loop.time() + seconds
        if self._timer is not None:
            if self._timer_at <= deadline:
                return  # the timer set finds the deadline moved and waits again
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._expire)

    def _disarm(self) -> None:
        self._deadline = None  # a timer set finds nothing due

    def _stop_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self._deadline is None or self.closing:
            return
        if self.loop.time() >= self._deadline:
            self.close()
        else:
            self._timer_at = self._deadline
            self._timer = self.loop.call_at(self._deadline, self._expire)


class _Chunks:
    """A streaming connection's body, one HTTP chunk a write."""

    def __init__(self, conn: _Connection) -> None:
        self.conn = conn

    def write(self, data: bytes) -> None:
        transport = self.conn.transport
        if data and transport is not None and not self.conn.closing:
            transport.write(b"%x\r\n%b\r\n" % (len(data), data))

    def end(self) -> None:
        transport = self.conn.transport
        if transport is not None and not self.conn.closing:
            transport.write(b"0\r\n\r\n")
        self.conn.close()

    def backlog(self) -> int:
        transport = self.conn.transport
        return transport.get_write_buffer_size() if transport is not None else 0


class _Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


_CLOSE = Reply(0)  # in a connection's queue: close once the answers before it are out


_PHRASES = {int(s): s.phrase for s in HTTPStatus}
# A reply's head by (status, body length, content type) when it has no headers of
# its own: most answers are one of a few (202 to ACKNOWLEDGE above all).
_HEADS: dict[tuple[int, int, str], bytes] = {}
_HEADS_KEPT = 256


def _head(reply: Reply) -> bytes:
    key = (reply.status, len(reply.body), reply.content_type)
    if not reply.headers:
        head = _HEADS.get(key)
        if head is not None:
            return head
    lines = [f"HTTP/1.1 {reply.status} {_phrase(reply.status)}",
             f"content-length: {len(reply.body)}"]
    if reply.content_type:
        lines.append(f"content-type: {reply.content_type}")
    lines.extend(f"{k}: {v}" for k, v in reply.headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if not reply.headers and len(_HEADS) < _HEADS_KEPT:
        _HEADS[key] = head
    return head


def _phrase(status: int) -> str:
    return _PHRASES.get(status, "")

