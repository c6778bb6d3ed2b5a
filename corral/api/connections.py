"""Bounds on connections, below HTTP requests: what uvicorn leaves open.

    connection made ──► over the cap? ── close an idle one (between requests or
          │                              not yet sending), else refuse this one
          ▼
    headers due within header_timeout of the connection (or of a request's first
    byte) ── late: closed (slowloris); longer than max_header_bytes: 431, closed
          ▼
    request → the app; idle afterwards → uvicorn's keep-alive timeout closes it

kube-apiserver gets the same from Go's http.Server (ReadHeaderTimeout,
MaxHeaderBytes = 1 MiB). The cap comes from the file limit, which the master
raises to its hard limit at start (corral.cli.limits): 1,100 idle
connections against the default soft limit of 1024 used to starve every request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import ssl
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

log = logging.getLogger("corral.api.connections")

# File descriptors kept back from connections: the store, agents' log streams,
# the node proxy's own client connections.
_RESERVED_FDS = 512


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = 10.0  # seconds from first byte (or connect) to all headers
    max_header_bytes: int = 1 << 20  # Go's http.DefaultMaxHeaderBytes
    max_connections: int = 0  # 0: from the file limit


def connection_cap(limits: ConnectionLimits) -> int:
    if limits.max_connections:
        return limits.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(64, soft - _RESERVED_FDS)


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with ``limits`` applied."""
    cap = connection_cap(limits)

    class Guarded(_GuardedProtocol):
        header_timeout = limits.header_timeout
        max_header_bytes = limits.max_header_bytes
        max_connections = cap

    return Guarded


class _GuardedProtocol(HttpToolsProtocol):
    header_timeout: float
    max_header_bytes: int
    max_connections: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_idle():
            log.warning("connection refused: at the cap connections=%d", len(self.connections))
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        add_tls_extension(self.scope, self.transport)  # type: ignore[arg-type]
        self._header_bytes = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                 b"content-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    def _idle(self) -> bool:
        """Between requests, or connected and not done sending headers."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _evict_idle(self) -> bool:
        for conn in self.connections:
            if conn is not self and isinstance(conn, _GuardedProtocol) and conn._idle() and \
                    not conn.transport.is_closing():
                conn.transport.close()
                return True
        return False

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class OneWrite:
    """A connection's transport whose writes of one turn of the loop go out as one:
    uvicorn writes an answer's head and its body apart, over TLS two records and
    two sends (and two reads at the other end). Everything but write (and close,
    which sends what waits first) is the transport's own."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._parts:
            asyncio.get_running_loop().call_soon(self._flush)
        self._parts.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        parts, self._parts = self._parts, []
        if parts and not self._transport.is_closing():
            self._transport.write(b"".join(parts))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def add_tls_extension(scope: dict[str, Any], transport: asyncio.BaseTransport) -> None:
    """The client certificate the TLS handshake verified, as ASGI's TLS extension
    puts it (scope["extensions"]["tls"]["client_cert_chain"], PEM), which uvicorn
    does not fill in: client certificate authentication reads it (x509_auth.py)."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        extensions = scope.setdefault("extensions", {})
        extensions["tls"] = {"client_cert_chain": [_pem(der)]}


@functools.lru_cache(maxsize=256)
def _pem(der: bytes) -> str:
    """A certificate as PEM, encoded once: a kept-alive connection shows the same
    one with every request."""
    return ssl.DER_cert_to_PEM_cert(der)


class TlsWebSocketProtocol(WSProtocol):
    """uvicorn's wsproto protocol with the TLS extension in the websocket's scope."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The ASGI task was created but has not run yet: the scope is still ours.
        add_tls_extension(self.scope, self.transport)  # type: ignore[arg-type]
