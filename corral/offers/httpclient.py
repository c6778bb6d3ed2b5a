"""The agent links' HTTP/1.1 client: asyncio and httptools over one TLS
connection, nothing more (agentlink.py's feed and launches); the protocol is the
client's own (client/lighthttp.py: ResponseReader).

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
from urllib.parse import urlsplit

import httptools

from corral.client.lighthttp import ResponseReader, Sink


class HttpError(Exception):
    """The connection failed, closed mid-answer, or the answer was not HTTP."""


class Connection(ResponseReader):
    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host  # the Host header

    def _lost_error(self, exc: Exception | None) -> Exception:
        return HttpError(f"connection closed: {exc!r}" if exc else "connection closed")

    def _malformed_error(self, err: httptools.HttpParserError) -> Exception:
        # a callback's own error (the sink's) comes wrapped: name it
        cause = f" ({err.__context__!r})" if err.__context__ is not None else ""
        return HttpError(f"malformed answer: {err}{cause}")

    async def request(self, method: str, path: str, body: bytes | None = None, *,
                      sink: Sink | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request on the connection (none other on its way); a 200's body goes
        to ``sink`` when given (and the answer's body is then b"")."""
        if self.closed or self.transport is None:
            raise HttpError("connection closed")
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        if body is not None:
            head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        status, _, answer = await self.exchange(
            head.encode("latin-1") + b"\r\n" + (body or b""), sink)
        return status, answer


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
