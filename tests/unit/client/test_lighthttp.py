"""lighthttp.LightPool against a real HTTP/1.1 server on loopback (asyncio's own,
answering by hand): connections kept and reused, one closed while idle taken
again on a new one, httpx's errors for what fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from corral.client.lighthttp import LightPool

Answer = Callable[[bytes], bytes | None]  # request head → the answer (None: none)


def ok(body: bytes = b'{"ok": true}', *, close: bool = False) -> bytes:
    extra = b"connection: close\r\n" if close else b""
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[tuple[int, list[bytes], list[int]]]:
    """Yields its port, the requests it read (head and body) and the connections made."""
    seen: list[bytes] = []
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                seen.append(head + body)
                reply = answer(head)
                if reply is None:
                    await asyncio.sleep(3600)
                writer.write(reply or b"")
                await writer.drain()
                if b"connection: close" in (reply or b"") or b"X-Then-Close" in head:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1], seen, connections
    finally:
        srv.close()


def pool(port: int, timeout: float = 5.0) -> LightPool:
    return LightPool(f"http://127.0.0.1:{port}", None, connect_timeout=2.0, timeout=timeout)


async def test_requests_share_a_kept_connection_and_arrive_whole() -> None:
    async with server(lambda head: ok()) as (port, seen, connections):
        light = pool(port)
        for n in range(3):
            request = httpx.Request("PUT", f"http://127.0.0.1:{port}/a/b?x={n}",
                                    headers={"Accept-Encoding": "gzip"}, content=b'{"n": 1}')
            response = await light.send(request)
            assert response.status_code == 200 and response.json() == {"ok": True}
            assert response.headers["content-type"] == "application/json"
        light.close()
        assert len(connections) == 1
        assert seen[2].startswith(b"PUT /a/b?x=2 HTTP/1.1\r\n") and seen[2].endswith(b'{"n": 1}')
        assert b"accept-encoding" not in seen[0].lower()  # answers come uncompressed


async def test_a_connection_the_server_closed_is_not_used_again() -> None:
    async with server(lambda head: ok()) as (port, seen, connections):
        light = pool(port)
        closing = httpx.Request("GET", f"http://127.0.0.1:{port}/", headers={"X-Then-Close": "1"})
        assert (await light.send(closing)).status_code == 200
        # The server closed its side after answering: the next request goes on a new
        # connection (at once, or once the kept one ends unanswered) and is answered.
        assert (await light.send(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
                ).status_code == 200
        light.close()
        assert len(connections) == 2 and len(seen) == 2


async def test_connection_close_in_the_answer_ends_the_connection() -> None:
    async with server(lambda head: ok(close=True)) as (port, _, connections):
        light = pool(port)
        for _ in range(2):
            assert (await light.send(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
                    ).status_code == 200
        light.close()
        assert len(connections) == 2


async def test_failures_are_httpx_errors() -> None:
    async with server(lambda head: None) as (port, _, _):
        with pytest.raises(httpx.ReadTimeout):
            await pool(port, timeout=0.2).send(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
    async with server(lambda head: b"not http at all\r\n\r\n") as (port, _, _):
        with pytest.raises(httpx.RemoteProtocolError):
            await pool(port).send(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
    # Nothing listens there any more: refused before anything was sent.
    with pytest.raises(httpx.ConnectError):
        await pool(port).send(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
