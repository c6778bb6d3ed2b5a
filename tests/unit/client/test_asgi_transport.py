"""The in-process transport: requests reach the app unchanged, responses stream
(a watch must not wait for its end), and a closed response stops the handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from corral.api.errors import APIError
from corral.client.asgi_transport import AsgiTransport
from corral.client.http import Client


class Probe:
    """A real Starlette app whose handlers record what they saw and did."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.stream_ended = asyncio.Event()
        self.app = Starlette(routes=[
            Route("/echo/{name}", self.echo, methods=["POST"]),
            Route("/stream", self.stream),
            Route("/boom", self.boom),
            Route("/slow", self.slow, methods=["POST"]),
        ])
        self.slow_started = asyncio.Event()
        self.slow_done = asyncio.Event()

    async def echo(self, request: Request) -> Response:
        return JSONResponse({
            "name": request.path_params["name"], "query": dict(request.query_params),
            "body": (await request.body()).decode(), "auth": request.headers.get("authorization"),
            "method": request.method,
        }, status_code=201, headers={"X-Seen": "yes"})

    async def stream(self, request: Request) -> Response:
        async def lines() -> AsyncIterator[bytes]:
            try:
                yield b"first\n"
                await self.release.wait()
                yield b"second\n"
                await asyncio.Event().wait()  # like a watch: never ends by itself
            finally:
                self.stream_ended.set()
        return StreamingResponse(lines())

    async def boom(self, request: Request) -> Response:
        raise RuntimeError("handler bug")

    async def slow(self, request: Request) -> Response:
        self.slow_started.set()
        await self.release.wait()  # a write the caller stops waiting for
        self.slow_done.set()
        return PlainTextResponse("done")


@pytest.fixture
async def probe_client() -> AsyncIterator[tuple[Probe, httpx.AsyncClient]]:
    probe = Probe()
    async with httpx.AsyncClient(transport=AsgiTransport(probe.app),
                                 base_url="https://master.local:6443") as client:
        yield probe, client


async def test_request_reaches_the_app_unchanged(probe_client) -> None:  # type: ignore[no-untyped-def]
    _, client = probe_client
    r = await client.post("/echo/a%20b", params={"x": "1", "y": "two words"},
                          content=b"payload", headers={"Authorization": "Bearer t"})
    assert r.status_code == 201 and r.headers["x-seen"] == "yes"
    assert r.json() == {"name": "a b", "query": {"x": "1", "y": "two words"},
                        "body": "payload", "auth": "Bearer t", "method": "POST"}


async def test_response_streams_before_the_handler_ends(probe_client) -> None:  # type: ignore[no-untyped-def]
    probe, client = probe_client
    async with client.stream("GET", "/stream") as r:
        lines = r.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 5) == "first"
        assert not probe.stream_ended.is_set()
        probe.release.set()
        assert await asyncio.wait_for(anext(lines), 5) == "second"
    # Closing the response is the client hanging up: the handler is stopped.
    await asyncio.wait_for(probe.stream_ended.wait(), 5)


async def test_closing_the_transport_stops_open_streams(probe_client) -> None:  # type: ignore[no-untyped-def]
    probe, client = probe_client
    r = await client.send(client.build_request("GET", "/stream"), stream=True)
    assert r.status_code == 200
    await client.aclose()
    await asyncio.wait_for(probe.stream_ended.wait(), 5)


async def test_handler_error_is_a_500_not_a_hang(probe_client) -> None:  # type: ignore[no-untyped-def]
    _, client = probe_client
    r = await asyncio.wait_for(client.get("/boom"), 5)
    assert r.status_code == 500


@pytest.fixture
async def probe_corral() -> AsyncIterator[tuple[Probe, Client]]:
    probe = Probe()
    async with Client("https://master.local:6443", "t", transport=AsgiTransport(probe.app),
                      attempts=1) as client:
        yield probe, client


async def test_plain_requests_are_answered_whole_by_the_same_app(
        probe_corral: tuple[Probe, Client]) -> None:
    """A corral Client's plain requests take the transport's whole-answer path
    (no httpx client flow around it): same request, same answer."""
    _, client = probe_corral
    r = await client.raw("POST", "/echo/a%20b", params={"x": "1"}, content=b"payload")
    assert r.status_code == 201 and r.headers["x-seen"] == "yes"
    assert r.json() == {"name": "a b", "query": {"x": "1"}, "body": "payload",
                        "auth": "Bearer t", "method": "POST"}
    with pytest.raises(APIError) as failed:  # Starlette's 500, then the error re-raised
        await asyncio.wait_for(client.raw("GET", "/boom"), 5)
    assert failed.value.code == 500


async def test_a_caller_that_gives_up_does_not_cut_the_handler_short(
        probe_corral: tuple[Probe, Client]) -> None:
    probe, client = probe_corral
    call = asyncio.create_task(client.raw("POST", "/slow"))
    await asyncio.wait_for(probe.slow_started.wait(), 5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    probe.release.set()
    await asyncio.wait_for(probe.slow_done.wait(), 5)
