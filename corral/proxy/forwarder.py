"""A TCP listener for one Service address that pipes each connection to a backend.

    client ──accept──▶ Listener ──candidates()──▶ Balancer
                          │ non-blocking connect (timeout); on failure the next candidate
                          ▼
    client socket ──_Direction──▶ backend socket
    client socket ◀──_Direction── backend socket

Everything runs on the event loop's own readiness callbacks (`add_reader`,
`add_writer`) over non-blocking sockets, with no task, future or transport per
connection: a proxied connection costs little more than its system calls, which
is what keeps a Python proxy near the speed of a direct connection.

Each direction reads what it can and sends it on; bytes the receiver cannot take
yet are held and reading stops until they are flushed, so a slow reader slows
its writer instead of filling memory. An EOF becomes a half-close (SHUT_WR)
towards the other side once the held bytes are out; both sockets close when both
directions have finished, or at once when either side fails.

Connections belong to their Listener. Stopping a listener only stops accepting:
connections in flight run to their end (a backend leaving the set does not cut
them). `close()` closes them all.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct

from corral.proxy.balancer import Address, Balancer

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_MAX_ATTEMPTS = 3
LISTEN_BACKLOG = 1024
READ_SIZE = 256 * 1024
# One receive buffer for every connection of the process: the loop runs one
# callback at a time and each sends what it read before returning. A fresh
# `recv(READ_SIZE)` would allocate (and glibc mmap, then shrink and unmap) a
# quarter-megabyte object per read, which cost more than the proxying itself.
_BUFFER = memoryview(bytearray(READ_SIZE))
ACCEPTS_PER_WAKEUP = 64  # bounds one callback's work so other connections get turns


class ProxyStats:
    """Connections of every listener in the process, as plain integers the agent's
    metrics read at scrape time (corral/agent/metrics.py)."""

    accepted = 0  # since the process started
    active = 0  # open now


PROXY_STATS = ProxyStats()


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


class _Direction:
    """Bytes flowing one way, from `source` to `sink`."""

    def __init__(self, connection: _Connection, source: socket.socket,
                 sink: socket.socket) -> None:
        self.connection = connection
        self.source = source
        self.sink = sink
        self.held = b""  # read but not yet taken by the sink
        self.eof = False  # the source has finished sending
        self.done = False  # EOF passed on to the sink
        self.reading = False
        self.writing = False

    def start(self) -> None:
        self._read(True)

    def stop(self) -> None:
        self._read(False)
        self._write(False)

    def on_readable(self) -> None:
        if self.connection.closed:
            return
        try:
            size = self.source.recv_into(_BUFFER)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.connection.abort()
            return
        if size:
            self._send(_BUFFER[:size])
        else:
            self.eof = True
            self._read(False)
            self._finish_if_flushed()

    def on_writable(self) -> None:
        if self.connection.closed:
            return
        data, self.held = self.held, b""
        self._send(data)

    def _send(self, data: bytes | memoryview) -> None:
        try:
            sent = self.sink.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.connection.abort()
            return
        if sent < len(data):
            self.held = bytes(data[sent:])  # a copy: the shared buffer is reused
            self._read(False)  # back-pressure: read more only once the sink takes this
            self._write(True)
            return
        self._write(False)
        if self.eof:
            self._finish_if_flushed()
        else:
            self._read(True)

    def _finish_if_flushed(self) -> None:
        if self.held or self.done:
            return
        self.done = True
        try:
            self.sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the sink is already gone; its own direction reports that
        self.connection.direction_finished()

    def _read(self, on: bool) -> None:
        if on != self.reading and not (on and self.eof):
            loop = self.connection.loop
            if on:
                loop.add_reader(self.source.fileno(), self.on_readable)
            else:
                loop.remove_reader(self.source.fileno())
            self.reading = on

    def _write(self, on: bool) -> None:
        if on != self.writing:
            loop = self.connection.loop
            if on:
                loop.add_writer(self.sink.fileno(), self.on_writable)
            else:
                loop.remove_writer(self.sink.fileno())
            self.writing = on


class _Connection:
    """One accepted client: connecting to a backend, then piping both ways."""

    def __init__(self, listener: Listener, client: socket.socket, client_ip: str) -> None:
        self.listener = listener
        self.loop = listener.loop
        self.client = client
        self.client_ip = client_ip
        self.backend: socket.socket | None = None
        self.address: Address | None = None  # the backend connected (or being tried)
        self.directions: list[_Direction] = []
        self.closed = False
        self._candidates = listener.balancer.candidates(client_ip)[: listener.max_attempts]
        self._timer: asyncio.TimerHandle | None = None

    # -- connecting -----------------------------------------------------------

    def connect_next(self) -> None:
        if not self._candidates:
            log.warning("no backend reachable service=%s client=%s", self.listener.name,
                        self.client_ip)
            self.abort()  # a reset, as a refused connection would give
            return
        self.address = self._candidates.pop(0)
        self.listener.balancer.opened(self.address)
        self.backend = socket.socket(socket.AF_INET,
                                     socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        code = self.backend.connect_ex(self.address)
        if code == errno.EINPROGRESS and self._established():
            code = 0
        if code == 0:
            self._on_connected()
            return
        if code != errno.EINPROGRESS:
            self._connect_failed(OSError(code, errno.errorcode.get(code, str(code))))
            return
        self.loop.add_writer(self.backend.fileno(), self._on_connect_done)
        self._timer = self.loop.call_later(self.listener.connect_timeout, self._on_timeout)

    def _established(self) -> bool:
        """Whether the handshake already finished: on loopback it usually has by the
        time connect() returns, and then waiting for writability costs two epoll
        changes and a loop turn for nothing."""
        assert self.backend is not None
        try:
            self.backend.getpeername()
        except OSError:
            return False
        return True

    def _on_connect_done(self) -> None:
        assert self.backend is not None
        self._stop_connecting()
        code = self.backend.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._connect_failed(OSError(code, errno.errorcode.get(code, str(code))))
            return
        self._on_connected()

    def _on_connected(self) -> None:
        assert self.backend is not None and self.address is not None
        self.backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.listener.balancer.stick(self.client_ip, self.address)
        self.directions = [_Direction(self, self.client, self.backend),
                           _Direction(self, self.backend, self.client)]
        for direction in self.directions:
            direction.start()

    def _on_timeout(self) -> None:
        self._timer = None
        self._stop_connecting()
        self._connect_failed(TimeoutError("connect timed out"))

    def _stop_connecting(self) -> None:
        assert self.backend is not None
        self.loop.remove_writer(self.backend.fileno())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _connect_failed(self, err: OSError) -> None:
        assert self.backend is not None and self.address is not None
        log.info("backend connect failed service=%s backend=%s:%d error=%r",
                 self.listener.name, self.address[0], self.address[1], err)
        self.backend.close()
        self.backend = None
        self.listener.balancer.closed(self.address)
        self.address = None
        self.connect_next()

    # -- ending ---------------------------------------------------------------

    def direction_finished(self) -> None:
        if all(direction.done for direction in self.directions):
            self._close()

    def abort(self) -> None:
        """End now: a reset towards both sides, no flushing."""
        if self.closed:
            return
        for sock in (self.client, self.backend):
            if sock is not None:
                # SO_LINGER 0: close sends RST, as a failed side would.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for direction in self.directions:
            direction.stop()
        if self.backend is not None and self._timer is not None:
            self._stop_connecting()
        for sock in (self.client, self.backend):
            if sock is not None:
                sock.close()
        if self.address is not None:
            self.listener.balancer.closed(self.address)
        self.listener._forget(self)


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
        self._sock: socket.socket | None = None
        self._connections: set[_Connection] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def start(self) -> None:
        sock = listening_socket(self.host, self.port)
        sock.listen(LISTEN_BACKLOG)
        self.port = sock.getsockname()[1]  # the real one when asked for port 0
        self._sock = sock
        self.loop.add_reader(sock.fileno(), self._on_acceptable)
        log.info("proxy listening service=%s address=%s:%d", self.name, self.host, self.port)

    @property
    def connections(self) -> int:
        return len(self._connections)

    def stop_accepting(self) -> None:
        """Close the listening socket; connections in flight keep running."""
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            log.info("proxy stopped listening service=%s address=%s:%d", self.name,
                     self.host, self.port)

    async def drained(self) -> None:
        """Wait until no connection is left."""
        await self._idle.wait()

    async def close(self) -> None:
        """Stop accepting and close every connection at once."""
        self.stop_accepting()
        for connection in list(self._connections):
            connection.abort()
        await self._idle.wait()

    def _on_acceptable(self) -> None:
        assert self._sock is not None
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                client, peer = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # out of file descriptors, aborted handshake...
                log.warning("proxy accept failed service=%s error=%r", self.name, err)
                return
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(self, client, peer[0])
            self._connections.add(connection)
            PROXY_STATS.accepted += 1
            PROXY_STATS.active += 1
            self._idle.clear()
            connection.connect_next()

    def _forget(self, connection: _Connection) -> None:
        if connection in self._connections:
            self._connections.discard(connection)
            PROXY_STATS.active -= 1
        if not self._connections:
            self._idle.set()
