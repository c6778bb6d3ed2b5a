"""The agent links' HTTP/1.1 client: asyncio and httptools over one TLS
connection, nothing more (agentlink.py's feed and launches).

    connect(url, tls, server_name) ─► Connection (keep-alive, one request at a time)
        request(method, path, body)        ─► (status, body)
        request(..., sink=f)               a 200's body handed to ``f`` as it comes
                                           (a feed held open), until it ends

httpx cost the leading master more CPU per launch than the agent's work (its
transport stack, anyio's TLS stream, a cancel scope and an event per read): the
offers bench counted ~16% of the master's samples in the two agent calls.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

Sink = Callable[[bytes], None]


class HttpError(Exception):
    """The connection failed, closed mid-answer, or the answer was not HTTP."""


class Connection(asyncio.Protocol):
    def __init__(self, host: str) -> None:
        self.host = host  # the Host header
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._status = 0
        self._body: list[bytes] = []
        self._sink: Sink | None = None
        self._keep = True

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpError(f"connection closed: {exc!r}" if exc else "connection closed"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            # a callback's own error (the sink's) comes wrapped: name it
            cause = f" ({err.__context__!r})" if err.__context__ is not None else ""
            self._fail(HttpError(f"malformed answer: {err}{cause}"))
            self.close()

    # -- httptools callbacks --------------------------------------------------------------

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
            answer.set_result((self._status, b"".join(self._body)))
        if not self._keep:
            self.close()

    # -- requests ---------------------------------------------------------------------------

    async def request(self, method: str, path: str, body: bytes | None = None, *,
                      sink: Sink | None = None) -> tuple[int, bytes]:
        """One request on the connection (none other on its way); a 200's body goes
        to ``sink`` when given (and the answer's body is then b"")."""
        if self.closed or self.transport is None:
            raise HttpError("connection closed")
        assert self._answer is None, "one request at a time"
        self._answer = asyncio.get_running_loop().create_future()
        self._status, self._body, self._sink, self._keep = 0, [], sink, True
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\n"
        if body is not None:
            head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        self.transport.write(head.encode("latin-1") + b"\r\n" + (body or b""))
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


async def connect(url: str, tls: ssl.SSLContext | None, server_name: str,
                  timeout: float) -> Connection:
    """A connection to ``url``'s host and port; TLS when ``tls`` is given, the
    certificate checked against ``server_name`` (the node's name, not its address)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if tls is not None else 80)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(
                lambda: Connection(parts.netloc), host, port, ssl=tls,
                server_hostname=server_name if tls is not None else None)
    except (OSError, TimeoutError, ssl.SSLError) as err:
        raise HttpError(f"cannot connect to {url}: {err!r}") from None
    return conn
