"""The Mesos master's direct line (framework_feed.py) served in front of the
agent's Starlette app, as bare ASGI:

    GET  /frameworkTasks                    ─► the feed (chunked JSON lines)
    POST /frameworkTasks/{ns}/{alloc}       ─► launch (JSON in, JSON out)
    anything else                           ─► Starlette (server.py's routes)

The master calls these for every task it launches and reads a state line for
each task's every change: in bench/offers.py Starlette's request, router,
middleware and response objects were a quarter of the agent's CPU on that
path. The answers are the same (statuses, bodies, content types), and so is the
guard: ``refusal`` is the one the other routes use (the master's client
certificate only).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

PATH = "/frameworkTasks"
Answer = tuple[int, str]  # a refusal's status and text
Refusal = Callable[[Scope], Answer | None]
# The launch: (namespace, alloc, parsed body) → status, JSON body or text.
Launch = Callable[[str, str, Any], tuple[int, Any]]
Feed = Callable[[], AsyncGenerator[bytes, None] | None]  # None: no feed to read yet
TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
JSON = [(b"content-type", b"application/json")]
JSONL = [(b"content-type", b"application/jsonl")]


class FrameworkLane:
    def __init__(self, app: ASGIApp, refusal: Refusal, launch: Launch, feed: Feed) -> None:
        self.app, self.refusal, self.launch, self.feed = app, refusal, launch, feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._route(scope) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None:
            await _answer(send, refused[0], refused[1])
            return
        await handler(scope, receive, send)

    def _route(self, scope: Scope) -> Callable[[Scope, Receive, Send], Awaitable[None]] | None:
        """Only what the master sends; other methods and paths (405, 404) are
        Starlette's."""
        path: str = scope["path"]
        if path == PATH and scope["method"] == "GET":
            return self._stream
        if scope["method"] == "POST" and path.startswith(PATH + "/"):
            parts = path[len(PATH) + 1:].split("/")
            if len(parts) == 2 and all(parts):
                return self._launch
        return None

    async def _launch(self, scope: Scope, receive: Receive, send: Send) -> None:
        ns, name = scope["path"][len(PATH) + 1:].split("/")
        body = await _body(receive)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            await _answer(send, 400, f"malformed launch: {err}")
            return
        code, out = self.launch(ns, name, parsed)
        if isinstance(out, str):
            await _answer(send, code, out)
        else:
            await _send(send, code, JSON, orjson.dumps(out))

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = self.feed()
        if chunks is None:
            await _answer(send, 503, "this agent runs no Allocs yet")
            return
        await send({"type": "http.response.start", "status": 200, "headers": JSONL})
        pump = asyncio.ensure_future(_pump(chunks, send))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, gone):
                task.cancel()
            await asyncio.gather(pump, gone, return_exceptions=True)
        if not pump.cancelled():  # the feed ended (it dropped a reader fallen behind)
            pump.result()  # or raises what stopped it
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _pump(chunks: AsyncGenerator[bytes, None], send: Send) -> None:
    try:
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        await chunks.aclose()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(parts)


async def _answer(send: Send, code: int, text: str) -> None:
    await _send(send, code, TEXT, (text + "\n").encode())


async def _send(send: Send, code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": code,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
