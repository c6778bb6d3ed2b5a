"""A TCP listener for one Service address that pipes each connection to a backend.

    client ──accept──▶ Listener ──candidates()──▶ Balancer
                          │ connect (timeout), on failure the next candidate
                          ▼
    client socket ◀──── _Pipe ⇄ _Pipe ────▶ backend socket

Bytes move with asyncio Protocols (no per-chunk task switch): what one side
reads, the other side's transport writes. A full write buffer pauses reading on
the other side, so a slow reader slows its writer instead of filling memory. An
EOF from one side becomes a half-close (shutdown SHUT_WR) towards the other;
both sockets close once both directions are finished or either side is lost.

Each connection is one task owned by its Listener. Stopping a listener only
stops accepting: connections in flight run to their end (a backend leaving the
set does not cut them). `close()` cancels and awaits them all.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import cast

from corral.proxy.balancer import Address, Balancer

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_MAX_ATTEMPTS = 3
LISTEN_BACKLOG = 1024


class _Pipe(asyncio.Protocol):
    """One socket of a proxied connection: what it reads, its peer's socket writes."""

    def __init__(self, lost: asyncio.Future[None], peer: _Pipe | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer = peer
        self.lost = lost
        self.eof = False  # the far end has finished sending
        self._paused = False  # reading paused because the peer cannot write fast enough

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.peer.transport is not None
        self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None:
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        if peer.eof:  # both directions are finished
            self._close()
            peer._close()
        return True  # keep the socket open: the other direction may still flow

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.peer is not None:
            self.peer._close()  # flushes what is still buffered, then closes

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer._pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer._resume_reading()

    def _pause_reading(self) -> None:
        # After an EOF the transport has already stopped reading; resuming it
        # later would read the EOF a second time.
        if self.transport is not None and not self.eof and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and self._paused:
            self._paused = False
            self.transport.resume_reading()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _ClientPipe(_Pipe):
    """The accepted side: holds reading until a backend is connected."""

    def __init__(self, listener: Listener) -> None:
        super().__init__(asyncio.get_running_loop().create_future())
        self._listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._pause_reading()
        self._listener._accepted(self)

    def link(self, backend: _Pipe) -> None:
        self.peer = backend
        self._resume_reading()


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket; SO_REUSEPORT lets every agent on a host bind the same clusterIP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Listener:
    """Accepts on host:port and forwards each connection to a backend of `balancer`."""

    def __init__(self, host: str, port: int, balancer: Balancer, *, name: str = "",
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        self.host = host
        self.port = port
        self.balancer = balancer
        self.name = name or f"{host}:{port}"
        self.connect_timeout = connect_timeout
        self.max_attempts = max_attempts
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        sock = listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]  # the real one when asked for port 0
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _ClientPipe(self), sock=sock,
                                                backlog=LISTEN_BACKLOG)
        log.info("proxy listening service=%s address=%s:%d", self.name, self.host, self.port)

    @property
    def connections(self) -> int:
        return len(self._tasks)

    def stop_accepting(self) -> None:
        """Close the listening socket; connections in flight keep running."""
        if self._server is not None:
            self._server.close()
            log.info("proxy stopped listening service=%s address=%s:%d", self.name,
                     self.host, self.port)

    async def drained(self) -> None:
        """Wait until no connection is left."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop accepting, cancel every connection and wait for all of them."""
        self.stop_accepting()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _accepted(self, client: _ClientPipe) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(client))
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def _serve(self, client: _ClientPipe) -> None:
        assert client.transport is not None
        peer = client.transport.get_extra_info("peername")
        client_ip = peer[0] if peer else ""
        try:
            connected = await self._connect(client, client_ip)
        except BaseException:
            client.abort()
            raise
        if connected is None:
            log.warning("no backend reachable service=%s client=%s", self.name, client_ip)
            client.abort()  # a reset, as a refused connection would give
            return
        address, backend = connected
        try:
            client.link(backend)
            await asyncio.gather(client.lost, backend.lost)
        finally:
            client.abort()
            backend.abort()
            self.balancer.closed(address)

    async def _connect(self, client: _ClientPipe,
                       client_ip: str) -> tuple[Address, _Pipe] | None:
        for address in self.balancer.candidates(client_ip)[: self.max_attempts]:
            backend = await self._try_backend(client, address)
            if backend is not None:
                self.balancer.stick(client_ip, address)
                return address, backend
        return None

    async def _try_backend(self, client: _ClientPipe, address: Address) -> _Pipe | None:
        loop = asyncio.get_running_loop()
        backend = _Pipe(loop.create_future(), peer=client)
        self.balancer.opened(address)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: backend, *address),
                                   self.connect_timeout)
        except (OSError, TimeoutError) as err:
            self.balancer.closed(address)
            log.info("backend connect failed service=%s backend=%s:%d error=%r", self.name,
                     address[0], address[1], err)
            return None
        except BaseException:
            self.balancer.closed(address)
            raise
        return backend
