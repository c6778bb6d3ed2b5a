"""A real uvicorn HTTPS listener on loopback serving a fixed answer, for tests of
the PKI and of what clients (httpx, kubectl) trust."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import Receive, Scope, Send

from corral.api.tls import Pki

ANSWER = b"hello over tls"


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": ANSWER})


class _QuietServer(uvicorn.Server):
    """No signal handlers: the test owns the process."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


@contextlib.asynccontextmanager
async def https_server(pki: Pki) -> AsyncIterator[int]:
    """A uvicorn HTTPS listener on 127.0.0.1 serving with ``pki``; yields its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_hello, ssl_certfile=str(pki.cert_path),
                            ssl_keyfile=str(pki.key_path), lifespan="off",
                            log_level="warning", access_log=False)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "server failed to start"
            await asyncio.sleep(0.01)
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()
