"""The quiet uvicorn server the master and the agents serve with: it answers
(with the Date header uvicorn keeps), and told to exit it stops at once rather
than at its next once-a-second look."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from corral.api import quiet_server
from corral.api.quiet_server import QuietServer
from tests.cluster import free_port
from tests.poll import eventually


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def test_serves_and_stops_when_told_not_at_its_next_tick(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A tick this long would hold a server that only looked at should_exit on
    # its ticks far past the test's timeout.
    monkeypatch.setattr(quiet_server, "TICK_SECONDS", 3600.0)
    port = free_port()
    server = QuietServer(uvicorn.Config(hello, host="127.0.0.1", port=port, lifespan="off",
                                        log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient() as client:
            async def answered() -> httpx.Response | None:
                try:
                    return await client.get(f"http://127.0.0.1:{port}/")
                except httpx.TransportError:
                    return None

            response = await eventually(answered, what="the server answering")
        assert response.text == "hello" and response.headers["date"].endswith(" GMT")
        assert not serving.done()
        server.should_exit = True
        await asyncio.wait_for(serving, 30)
    finally:
        serving.cancel()
