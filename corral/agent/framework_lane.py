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

A launch is answered synchronously (``launch_answer``), so LaneProtocol answers
it in uvicorn's protocol itself once its body is in, without an ASGI task,
request-response cycle and messages per launch (a third of the agent's CPU per
launch POST); what that path does not take (pipelined behind a request still
running, Expect: 100-continue, HTTP/1.0, an upgrade) goes the ASGI way, to the
same answer.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, cast

import httptools
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger(__name__)

PATH = "/frameworkTasks"
Answer = tuple[int, str]  # a refusal's status and text
Refusal = Callable[[Scope], Answer | None]
# The launch: (namespace, alloc, parsed body) → status, JSON body or text.
Launch = Callable[[str, str, Any], tuple[int, Any]]
Feed = Callable[[], AsyncGenerator[bytes, None] | None]  # None: no feed to read yet
TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
JSON = [(b"content-type", b"application/json")]
JSONL = [(b"content-type", b"application/jsonl")]
Headers = list[tuple[bytes, bytes]]


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
        if scope["method"] == "POST" and is_launch(path):
            return self._launch
        return None

    async def _launch(self, scope: Scope, receive: Receive, send: Send) -> None:
        code, headers, body = self.launch_answer(scope, await _body(receive))
        await _send(send, code, headers, body)

    def launch_answer(self, scope: Scope, body: bytes) -> tuple[int, Headers, bytes]:
        """A launch's answer (the guard's refusal first): status, headers, body."""
        refused = self.refusal(scope)
        if refused is not None:
            return _text(*refused)
        ns, name = scope["path"][len(PATH) + 1:].split("/")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            return _text(400, f"malformed launch: {err}")
        code, out = self.launch(ns, name, parsed)
        if isinstance(out, str):
            return _text(code, out)
        return code, JSON, orjson.dumps(out)


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


def is_launch(path: str) -> bool:
    """POST /frameworkTasks/{ns}/{alloc}'s path."""
    if not path.startswith(PATH + "/"):
        return False
    parts = path[len(PATH) + 1:].split("/")
    return len(parts) == 2 and all(parts)


class LaneProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol answering the master's launches itself (see
    the module's docstring); ``lane`` is set by the subclass the server makes.
    Below the connection guard (connections.py) in the MRO, so its header
    deadline and size limit hold for these requests as for any."""

    lane: FrameworkLane
    _lane_body: list[bytes] | None = None  # a launch's body coming in

    def on_headers_complete(self) -> None:
        if self._takes_launch():
            self._lane_body = []
            return
        super().on_headers_complete()

    def _takes_launch(self) -> bool:
        parser = self.parser
        if (parser.get_method() != b"POST" or self.expect_100_continue
                or parser.get_http_version() != "1.1" or parser.should_upgrade()
                or (self.cycle is not None and not self.cycle.response_complete)):
            return False
        parsed = httptools.parse_url(self.url)
        path = parsed.path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        if not is_launch(path):
            return False
        self.scope.update({"method": "POST", "path": self.root_path + path,
                           "raw_path": self.root_path.encode("ascii") + parsed.path,
                           "query_string": parsed.query or b""})
        return True

    def on_body(self, body: bytes) -> None:
        if self._lane_body is None:
            super().on_body(body)
        else:
            self._lane_body.append(body)

    def on_message_complete(self) -> None:
        if self._lane_body is None:
            super().on_message_complete()
            return
        body, self._lane_body = b"".join(self._lane_body), None
        try:
            code, headers, content = self.lane.launch_answer(cast(Scope, self.scope), body)
        except Exception:  # as uvicorn answers an app's error
            log.exception("framework launch failed path=%s", self.scope["path"])
            code, headers, content = _text(500, "Internal Server Error")
        keep_alive = self.parser.should_keep_alive()
        out = [STATUS_LINE[code]]
        for name, value in (*self.server_state.default_headers, *headers,
                            (b"content-length", str(len(content)).encode())):
            out += [name, b": ", value, b"\r\n"]
        if not keep_alive:
            out.append(b"connection: close\r\n")
        out += [b"\r\n", content]
        self.transport.write(b"".join(out))
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()  # uvicorn's: keep-alive timer, the next request

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


def _text(code: int, text: str) -> tuple[int, Headers, bytes]:
    return code, TEXT, (text + "\n").encode()


async def _answer(send: Send, code: int, text: str) -> None:
    await _send(send, *_text(code, text))


async def _send(send: Send, code: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": code,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
