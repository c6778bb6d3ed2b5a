"""The API's listening socket, accepting in batches.

    listen(backlog) ── readable ──► accept up to ACCEPT_BATCH connections now
                                        │ each: its own task
                                        ▼
                    loop.connect_accepted_socket(protocol, ssl, handshake timeout)
                    (the TLS handshake, then uvicorn's protocol as usual)

Why not uvicorn's own listener: libuv (under uvloop) accepts ONE connection per
turn of the event loop (libuv/libuv#3696, since 1.45). While 200 writers keep
the loop busy a turn takes 20-800 ms, so the master accepted ~40 connections/s;
2,000 idle connections opened by an attacker filled the accept queue, and a new
client (kubectl) waited behind them in the kernel's queue until its 10 s TLS
handshake limit ran out (measured: the listener's queue held 1,000-1,500
connections for 20 s, and handshakes took 4-16 s). Accepting a batch per turn
drains the queue every turn, so a new connection waits one turn, not a thousand.

A connection that never finishes its TLS handshake is closed after the header
timeout, as one that never finishes its headers is (connections.py).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable

log = logging.getLogger("corral.api.listener")

ACCEPT_BATCH = 512  # connections accepted per turn of the loop (asyncio's own is the backlog)
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_RESOURCE_PAUSE = 1.0  # seconds without accepting after running out of descriptors


class BatchListener:
    """One listening socket; ``close()``/``wait_closed()`` as an asyncio Server,
    so uvicorn's shutdown stops it like its own."""

    def __init__(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol],
                 ssl_context: ssl.SSLContext | None, handshake_timeout: float) -> None:
        self.sock = sock
        self.factory = factory
        self.ssl = ssl_context
        self.handshake_timeout = handshake_timeout
        self._loop = asyncio.get_running_loop()
        self._pending: set[asyncio.Task[None]] = set()  # handshakes under way
        self._closed = False

    @classmethod
    def open(cls, host: str, port: int, backlog: int, factory: Callable[[], asyncio.Protocol],
             ssl_context: ssl.SSLContext | None, handshake_timeout: float) -> BatchListener:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=backlog)
        sock.setblocking(False)
        listener = cls(sock, factory, ssl_context, handshake_timeout)
        listener._loop.add_reader(sock.fileno(), listener._accept)
        return listener

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as err:
                if err.errno not in _OUT_OF_RESOURCES:
                    raise
                log.warning("accept paused: out of resources error=%s", err.strerror)
                self._loop.remove_reader(self.sock.fileno())
                self._loop.call_later(_RESOURCE_PAUSE, self._resume)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._serve(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _resume(self) -> None:
        if not self._closed:
            self._loop.add_reader(self.sock.fileno(), self._accept)

    async def _serve(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self.factory, conn, ssl=self.ssl,
                ssl_handshake_timeout=self.handshake_timeout if self.ssl else None)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as err:
            log.debug("connection dropped before it was served error=%r", err)
            conn.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for task in self._pending:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
