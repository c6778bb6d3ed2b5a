"""A lean HTTP/1.1 load generator for the benchmarks: keep-alive connections over
asyncio streams (TLS or not), one request in flight per connection.

httpx costs more CPU per request than the API server does, so on a 2-core box it
would measure itself; this client spends a few microseconds per request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

Request = tuple[str, str, bytes]  # method, path, body
MAX_RETRIES = 10  # client-go's default for a Retry-After answer


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str, token: str) -> None:
        self.reader = reader
        self.writer = writer
        self.prefix = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n".encode()
        self.retry_after = 0.0  # the last answer's Retry-After, in seconds
        self.throttled = 0  # 429s that send() waited out and sent again

    @classmethod
    async def open(cls, url: str, token: str, ca_path: str | None) -> Connection:
        parts = urlsplit(url)
        ctx = None
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca_path)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port, ssl=ctx)
        return cls(reader, writer, parts.netloc, token)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\n".encode() + self.prefix
                + b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode())
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        chunked = False
        self.retry_after = 0.0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lname == b"retry-after":
                self.retry_after = float(value)
        if chunked:
            return status, await self._read_chunked()
        return status, await self.reader.readexactly(length)

    async def send(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """``request``, honouring the API's fairness as client-go and corral's own
        client (corral/client/http.py) do: a 429 with Retry-After was turned away
        before anything ran, so any verb is sent again after the wait it asks (at
        most 10 s), up to MAX_RETRIES times. A 429 without Retry-After (an eviction
        a disruption budget refuses) is the caller's answer."""
        status, data = await self.request(method, path, body)
        for _ in range(MAX_RETRIES):
            if status != 429 or not self.retry_after:
                break
            self.throttled += 1
            await asyncio.sleep(min(self.retry_after, 10.0))
            status, data = await self.request(method, path, body)
        return status, data

    async def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await self.reader.readexactly(size + 2)
            if size == 0:
                return bytes(out)
            out += data[:-2]

    def close(self) -> None:
        self.writer.close()


async def run_requests(url: str, token: str, ca_path: str | None, requests: list[Request],
                       connections: int, check: Callable[[int, bytes], None]) -> None:
    """Send ``requests`` over ``connections`` keep-alive connections; ``check``
    sees every answer (and raises on a wrong one)."""
    queue = list(reversed(requests))
    conns = [await Connection.open(url, token, ca_path) for _ in range(connections)]

    async def worker(conn: Connection) -> None:
        while queue:
            method, path, body = queue.pop()
            status, data = await conn.send(method, path, body)
            check(status, data)

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            c.close()


async def watch_lines(conn: Connection, path: str):  # type: ignore[no-untyped-def]
    """Send a watch request and yield each event line as it arrives."""
    conn.writer.write(f"GET {path} HTTP/1.1\r\n".encode() + conn.prefix + b"\r\n")
    status_line = await conn.reader.readuntil(b"\r\n")
    assert int(status_line.split(b" ", 2)[1]) == 200, status_line
    while await conn.reader.readuntil(b"\r\n") != b"\r\n":
        pass
    pending = b""
    while True:
        size = int((await conn.reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await conn.reader.readexactly(size + 2)
        if size == 0:
            return
        pending += data[:-2]
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line:
                yield line
