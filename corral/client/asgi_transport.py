"""An httpx transport that hands requests straight to an ASGI app in the same
event loop: the scheduler and controllers inside `corral master` talk to the API
server without TLS, sockets or a connection pool, yet through the very same
handlers, authentication, admission and metrics as any remote client.

httpx ships an ASGITransport, but it buffers the whole response before
returning, so a watch (a response that never ends) would never arrive. This one
streams: response body chunks flow through a small bounded queue, which also
gives the app back-pressure as a socket would. Closing the response (or the
client going away) cancels the app's task, as a dropped connection does under
uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import httpx

from corral.aiotasks import cancel_and_wait

Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]],
                    Callable[[Message], Awaitable[None]]], Awaitable[None]]

log = logging.getLogger("corral.client.asgi")

_CHUNKS_IN_FLIGHT = 64  # body chunks the app may run ahead of the reader
_END = object()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, queue: asyncio.Queue[object], task: asyncio.Task[None],
                 disconnected: asyncio.Event) -> None:
        self._queue = queue
        self._task = task
        self._disconnected = disconnected

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise httpx.ReadError(f"the API handler failed mid-response: {item!r}")
            assert isinstance(item, bytes)
            yield item

    async def aclose(self) -> None:
        self._disconnected.set()
        if not self._task.done():
            await cancel_and_wait(self._task)


class AsgiTransport(httpx.AsyncBaseTransport):
    """Serve every request of an ``httpx.AsyncClient`` by calling ``app``."""

    def __init__(self, app: ASGIApp, client_addr: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.app = app
        self.client_addr = client_addr
        self._tasks: set[asyncio.Task[None]] = set()

    def _scope(self, request: httpx.Request) -> dict[str, Any]:
        url = request.url
        raw_path, _, query = url.raw_path.partition(b"?")
        return {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": request.method, "scheme": url.scheme,
            "path": unquote(raw_path.decode("ascii")), "raw_path": raw_path,
            "query_string": query, "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
            # Marks the master's own components: the API seats them in the system lane.
            "client": self.client_addr, "extensions": {"corral.in_process": {}},
        }

    async def send_whole(self, request: httpx.Request) -> httpx.Response:
        """A plain request (not a stream): the app answers it whole, the same app
        and middleware (authentication, authorization, admission) as any other,
        without httpx's client machinery around it (auth and redirect flows,
        hooks, a streamed body through a queue): the in-process clients' writes
        of the Mesos master's Allocs, Leases, gets. The app runs in a task of its
        own, as a request over a socket does: a caller that gives up does not cut
        a write short."""
        body = request.content
        scope = self._scope(request)
        chunks: list[bytes] = []
        head: list[tuple[int, list[tuple[bytes, bytes]]]] = []
        ended = asyncio.Event()
        received = False

        async def receive() -> Message:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # no disconnect: the task ends with the answer
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                head.append((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    ended.set()

        async def run() -> None:
            await self.app(scope, receive, send)

        task = asyncio.create_task(run(), name=f"asgi {request.method} {scope['path']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # An error after the whole answer went out (Starlette's 500 re-raises
            # once sent) leaves the answer; before, there is none.
            if not ended.is_set():
                raise httpx.RemoteProtocolError(
                    f"{request.method} {request.url}: {err!r}") from err
            log.error("API handler failed after its answer path=%s", scope["path"],
                      exc_info=err)
        if not head or not ended.is_set():
            raise httpx.RemoteProtocolError(f"{request.method} {request.url}: the API "
                                            "handler sent no whole response")
        status, headers = head[0]
        return httpx.Response(status, headers=headers, content=b"".join(chunks),
                              request=request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url
        scope = self._scope(request)
        body_sent = ended = False
        disconnected = asyncio.Event()
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future())
        queue: asyncio.Queue[object] = asyncio.Queue(_CHUNKS_IN_FLIGHT)

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.start":
                started.set_result((message["status"], list(message.get("headers", []))))
            elif message["type"] == "http.response.body":
                if disconnected.is_set():
                    raise OSError("client disconnected")
                chunk = message.get("body", b"")
                if chunk:
                    await queue.put(bytes(chunk))
                if not message.get("more_body", False):
                    ended = True
                    await queue.put(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if not started.done():
                    started.set_exception(err)
                else:
                    log.exception("API handler failed mid-response path=%s", scope["path"])
                    if not disconnected.is_set():
                        await queue.put(err)
                return
            if not started.done():
                started.set_exception(RuntimeError("the API handler sent no response"))
            elif not ended and not disconnected.is_set():
                await queue.put(_END)

        task = asyncio.create_task(run(), name=f"asgi {request.method} {scope['path']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            status, headers = await asyncio.shield(started)
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as err:
            raise httpx.RemoteProtocolError(f"{request.method} {url}: {err!r}") from err
        return httpx.Response(status, headers=headers, request=request,
                              stream=_ResponseStream(queue, task, disconnected))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
