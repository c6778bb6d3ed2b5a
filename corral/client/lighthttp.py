"""A Client's plain requests (not its streams) over kept-alive HTTP/1.1
connections of its own: asyncio and httptools, nothing more (as the Mesos
master's calls to agents, offers/httpclient.py).

    LightPool(url, ssl context).send(httpx.Request) ─► httpx.Response (read)
        an idle connection, else a new one; the request in one write; the answer
        parsed as it comes; the connection kept for the next unless it closes
        a kept connection the server closed before answering ─► once more on a
        new one (it cannot have run the request)

httpx's transport stack (httpcore's pool, anyio's TLS stream, the headers and
the body in two TLS writes, a cancel scope per read, a cookie jar) cost a node
agent ~2 ms of CPU per request in bench/offers.py: its Lease renewals, Node and
Alloc status writes. Errors are httpx's (ConnectError, ConnectTimeout,
ReadTimeout, ReadError, RemoteProtocolError), so the Client retries as it does
for httpx's own.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools
import httpx

IDLE_CONNECTIONS = 8
SKIPPED_HEADERS = frozenset({b"accept-encoding"})  # answers come uncompressed


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body
Sink = Callable[[bytes], None]


class ResponseReader(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection, one request at a time, its answer parsed
    by httptools as it comes (a 200's body handed to a ``sink`` instead, when the
    request gave one: a feed held open). The errors are the subclass's to name
    (``_lost_error``, ``_malformed_error``); this module's and
    offers/httpclient.py's connections are both one."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self._answer: asyncio.Future[Answer] | None = None
        self._started = False  # a byte of the answer came
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._sink: Sink | None = None
        self._keep = True

    def _lost_error(self, exc: Exception | None) -> Exception:
        raise NotImplementedError

    def _malformed_error(self, err: httptools.HttpParserError) -> Exception:
        raise NotImplementedError

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(self._lost_error(exc))

    def data_received(self, data: bytes) -> None:
        self._started = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(self._malformed_error(err))
            self.close()

    # -- httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()
        self._keep = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self._sink is not None and self._status == 200:
            self._sink(body)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_result((self._status, self._headers, b"".join(self._body)))
        if not self._keep:
            self.close()

    # -- requests ---------------------------------------------------------------------------

    async def exchange(self, raw: bytes, sink: Sink | None = None) -> Answer:
        """Write ``raw`` (a whole request) and wait for its answer."""
        assert self.transport is not None and self._answer is None, "one request at a time"
        self._answer = asyncio.get_running_loop().create_future()
        self._started, self._status, self._headers, self._body = False, 0, [], []
        self._sink, self._keep = sink, True
        self.transport.write(raw)
        try:
            return await self._answer
        finally:
            self._sink = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, err: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(err)


class _NoAnswer(Exception):
    """The connection ended before a byte of the answer came."""


class _Connection(ResponseReader):
    def _lost_error(self, exc: Exception | None) -> Exception:
        if not self._started:
            return _NoAnswer(repr(exc))
        return httpx.RemoteProtocolError(f"connection closed mid-answer: {exc!r}")

    def _malformed_error(self, err: httptools.HttpParserError) -> Exception:
        return httpx.RemoteProtocolError(f"malformed answer: {err}")


class LightPool:
    """Connections to one server (``url``'s scheme, host and port)."""

    def __init__(self, url: str, context: ssl.SSLContext | None, *, connect_timeout: float,
                 timeout: float) -> None:
        parsed = httpx.URL(url)
        self.host = parsed.host
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.context = context if parsed.scheme == "https" else None
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._idle: deque[_Connection] = deque()

    async def send(self, request: httpx.Request) -> httpx.Response:
        raw = _encode(request, await request.aread())
        for attempt in (1, 2):
            conn, kept = await self._take(request)
            try:
                async with asyncio.timeout(self.timeout):
                    status, headers, body = await conn.exchange(raw)
            except _NoAnswer as err:
                conn.close()
                if kept and attempt == 1:
                    continue  # closed by the server while idle: it never saw the request
                raise httpx.ReadError(f"connection closed without an answer: {err}",
                                      request=request) from None
            except TimeoutError:
                conn.close()
                raise httpx.ReadTimeout("no answer in time", request=request) from None
            except BaseException:  # its own error, or cancelled: the connection is in no state
                conn.close()
                raise
            if not conn.closed and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(conn)
            return httpx.Response(status, headers=headers, content=body, request=request)
        raise AssertionError("unreachable")

    async def _take(self, request: httpx.Request) -> tuple[_Connection, bool]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn, True
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self.context,
                    server_hostname=self.host if self.context is not None else None)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"cannot connect to {self.host}:{self.port} in time",
                                       request=request) from None
        except OSError as err:  # refused, unreachable, or the TLS handshake failed
            raise httpx.ConnectError(f"cannot connect to {self.host}:{self.port}: {err!r}",
                                     request=request) from None
        return conn, False

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _encode(request: httpx.Request, body: bytes) -> bytes:
    """The request line, its headers and its body, for one write."""
    parts = [request.method.encode(), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if name.lower() not in SKIPPED_HEADERS:
            parts += [name, b": ", value, b"\r\n"]
    parts += [b"\r\n", body]
    return b"".join(parts)
