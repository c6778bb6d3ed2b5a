"""Small real backends and clients on loopback for the proxy tests.

A `NamedBackend` answers an HTTP GET with its own name (then closes, as with
keep-alive off). Any other first line switches it to echo mode: each line comes
back as "<name> <line>" until the client half-closes, then "<name> bye" and close.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket

from corral.proxy.model import Backend

SERVICE_PORT = 80 if os.geteuid() == 0 else 18080


def random_cluster_ip() -> str:
    """Unique per test, so parallel test runs sharing SO_REUSEPORT never meet."""
    return f"127.100.{random.randint(0, 255)}.{random.randint(1, 254)}"


def random_node_ip() -> str:
    return f"127.0.1.{random.randint(2, 254)}"


def random_node_port() -> int:
    return random.randint(30000, 32767)


def refused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class NamedBackend:
    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def backend(self, ready: bool = True) -> Backend:
        return Backend(self.host, self.port, ready)

    async def start(self) -> NamedBackend:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        try:
            first = await reader.readline()
            if first.startswith(b"GET "):
                await self._http(reader, writer)
            else:
                await self._echo(first, reader, writer)
        except ConnectionError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        body = self.name.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()

    async def _echo(self, line: bytes, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        while line:
            writer.write(self.name.encode() + b" " + line)
            await writer.drain()
            line = await reader.readline()
        writer.write(self.name.encode() + b" bye\n")
        await writer.drain()


async def started(*names: str) -> list[NamedBackend]:
    return [await NamedBackend(name).start() for name in names]


async def http_get(host: str, port: int, source: str | None = None) -> str:
    """One GET on a new connection (keep-alive off); the body, i.e. the backend's name."""
    reader, writer = await asyncio.open_connection(
        host, port, local_addr=(source, 0) if source else None)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n")
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response
    return body.decode()
