"""The Mesos endpoint's HTTP server (corral/offers/httpserver.py) on a real
loopback socket, spoken to in raw bytes: answers in request order when requests
are pipelined and some wait, a stream's records as chunks, and the limits
(body 413, headers 431, malformed 400); and how a subscription's Stream batches
its records into those chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from corral.offers.httpserver import Answer, ChunkSink, HttpServer, Reply, Request, StreamReply
from corral.offers.protocol import event, recordio
from corral.offers.stream import Stream

MAX_BODY = 1024


class App:
    """Answers at once, or after a wait (/slow), or streams (/stream)."""

    def __init__(self) -> None:
        self.sink: ChunkSink | None = None
        self.lost = asyncio.Event()
        self.tasks = 0

    def handle(self, request: Request) -> Answer | Coroutine[Any, Any, Answer]:
        if request.path == "/slow":
            return self._slow(request)
        if request.path == "/stream":
            return StreamReply(self._attach, self.lost.set, headers=[("x-stream", "s1")])
        return Reply.text(200, f"{request.method} {request.path} {len(request.body)}")

    async def _slow(self, request: Request) -> Answer:
        self.tasks += 1
        await asyncio.sleep(0.05)
        return Reply.text(200, "slow")

    def _attach(self, sink: ChunkSink) -> None:
        self.sink = sink


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, int]]:
    app = App()
    server = HttpServer(app.handle, max_body=MAX_BODY)
    await server.start("127.0.0.1", 0)
    try:
        yield app, server.port
    finally:
        await server.stop()


async def exchange(port: int, raw: bytes, answers: int) -> list[tuple[int, bytes]]:
    """Send ``raw``; read ``answers`` Content-Length answers (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    out = []
    try:
        for _ in range(answers):
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
            status = int(head.split()[1])
            length = next(int(line.split(":")[1]) for line in head.split("\r\n")
                          if line.lower().startswith("content-length:"))
            out.append((status, await reader.readexactly(length)))
    finally:
        writer.close()
    return out


async def test_pipelined_requests_are_answered_in_order(served: tuple[App, int]) -> None:
    app, port = served
    raw = (b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"
           b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
           b"POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
    assert await exchange(port, raw, 3) == [(200, b"GET /a 0"), (200, b"slow"),
                                            (200, b"POST /b 3")]
    assert app.tasks == 1  # only the call that waited was a task


async def test_limits_and_malformed_requests(served: tuple[App, int]) -> None:
    _, port = served
    big = b"x" * (MAX_BODY + 1)
    [(status, _)] = await exchange(
        port, b"POST /a HTTP/1.1\r\ncontent-length: %d\r\n\r\n%b" % (len(big), big), 1)
    assert status == 413
    [(status, _)] = await exchange(
        port, b"GET /a HTTP/1.1\r\nx-big: " + b"y" * (70 * 1024) + b"\r\n\r\n", 1)
    assert status == 431
    [(status, body)] = await exchange(port, b"NOT HTTP AT ALL\r\n\r\n", 1)
    assert status == 400 and b"Malformed" in body


async def test_a_stream_sends_chunks_until_it_ends(served: tuple[App, int]) -> None:
    app, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /stream HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode().lower()
    assert head.startswith("http/1.1 200") and "transfer-encoding: chunked" in head
    assert "x-stream: s1" in head
    assert app.sink is not None
    app.sink.write(b"3\n{}\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n3\n{}\n\r\n"), 5) == b"5\r\n3\n{}\n\r\n"
    app.sink.end()
    assert await asyncio.wait_for(reader.read(), 5) == b"0\r\n\r\n"
    await asyncio.wait_for(app.lost.wait(), 5)  # the connection's end is told
    writer.close()


class Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.ended = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def end(self) -> None:
        self.ended.set()

    def backlog(self) -> int:
        return 0


async def test_a_stream_batches_updates_and_sends_offers_at_the_end_of_the_turn() -> None:
    stream, sink = Stream("fw"), Sink()
    stream.send(event("SUBSCRIBED"))  # before the response: held for it
    stream.attach(sink)
    assert sink.writes == [recordio(event("SUBSCRIBED"))]
    updates = [event("UPDATE", status={"n": i}) for i in range(3)]
    for evt in updates:
        stream.send(evt)
    offers = event("OFFERS", offers=[])
    stream.send(offers)  # goes at the end of this turn, with the updates before it
    await asyncio.sleep(0)
    assert sink.writes[1:] == [b"".join(recordio(e) for e in [*updates, offers])]
    stream.send(updates[0])
    stream.close()  # what was sent goes out, then the response ends
    await asyncio.wait_for(sink.ended.wait(), 5)
    assert sink.writes[2:] == [recordio(updates[0])]


async def test_slow_headers_and_idle_keep_alive_are_closed_and_busy_ones_kept(
        served: tuple[App, int], monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.offers import httpserver

    _, port = served
    monkeypatch.setattr(httpserver, "HEADER_TIMEOUT", 0.3)
    monkeypatch.setattr(httpserver, "IDLE_TIMEOUT", 1.2)
    loop = asyncio.get_running_loop()

    async def closed_after(writer_data: bytes, then: bytes = b"") -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = loop.time()
        writer.write(writer_data)
        try:
            while await asyncio.wait_for(reader.read(65536), 5):
                if then:  # one more request once the first is answered: a fresh deadline
                    writer.write(then)
                    then = b""
            return loop.time() - start
        finally:
            writer.close()

    # Headers never finished: the header deadline (armed at the connect).
    assert 0.25 <= await closed_after(b"GET /a HTTP/1.1\r\nhost: x\r\n") < 1.1
    # Answered, then idle: the idle deadline replaces the header one, which was
    # sooner, and each request moves it on.
    request = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"
    assert 1.15 <= await closed_after(request) < 4
    assert 1.15 <= await closed_after(request, then=request) < 4
