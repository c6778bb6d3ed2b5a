"""Watch streams: one JSON event per line, chunked.

    {"type": "ADDED"|"MODIFIED"|"DELETED", "object": {...}}
    {"type": "BOOKMARK", "object": {kind, apiVersion, metadata: {resourceVersion}}}
    {"type": "ERROR", "object": <Status>}      e.g. 410 when history was compacted

A watch from a resourceVersion older than the compacted history answers 200 with
that one ERROR event (410 Expired), as kube-apiserver's watch cache does: client
libraries read the 410 from the stream (a browser's fetch could not read the body
of an HTTP 410), and re-list.

A watcher that the store drops for being slow sees its stream end; clients
re-watch from the last resourceVersion they saw.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse

from corral.aiotasks import cancel_and_wait
from corral.api import tables
from corral.api.conversion import conversion_for, stored, to_served
from corral.api.errors import APIError, BadRequest, Gone
from corral.api.handlers.responses import include_object, wants_table
from corral.api.identity_cache import IdentityCache
from corral.api.paths import Target
from corral.api.registry import Filter, watch_objects
from corral.api.resources import Resource
from corral.store.base import Store
from corral.store.errors import StoreError

BOOKMARK_INTERVAL = 30.0  # seconds without events before a BOOKMARK is sent
_END = object()
_TICK = object()  # wakes an idle stream to look at its timers


def _timeout(request: Request) -> float:
    raw = request.query_params.get("timeoutSeconds")
    if raw:
        try:
            return max(float(raw), 0.0)
        except ValueError:
            raise BadRequest(f"timeoutSeconds must be a number, got {raw!r}") from None
    return random.uniform(1800, 3600)  # as kube-apiserver: spread reconnects over time


async def check_not_compacted(store: Store, resource_version: str) -> None:
    if resource_version in ("", "0"):
        return
    try:
        rv = int(resource_version)
    except ValueError:
        raise BadRequest(f"invalid resourceVersion: {resource_version!r}") from None
    compacted = await store.compacted_revision()
    if rv < compacted:
        raise Gone(f"too old resource version: {rv} ({compacted + 1})")


async def watch_response(request: Request, store: Store, target: Target,
                         flt: Filter) -> StreamingResponse:
    rv = request.query_params.get("resourceVersion", "")
    as_table = wants_table(request)
    try:
        await check_not_compacted(store, rv)
    except Gone as gone:
        return StreamingResponse(_one_error(gone), media_type="application/json",
                                 headers={"Cache-Control": "no-cache, private"})
    stream = _stream(
        request, store, target, flt, rv, as_table=as_table,
        bookmarks=request.query_params.get("allowWatchBookmarks", "") in ("1", "true"),
        timeout=_timeout(request),
    )
    media = "application/json"
    if as_table:
        media = "application/json;as=Table;v=v1;g=meta.k8s.io"
    return StreamingResponse(stream, media_type=media,
                             headers={"Cache-Control": "no-cache, private"})


async def _one_error(err: APIError) -> AsyncIterator[bytes]:
    yield _line("ERROR", err.to_status())


_LINES: IdentityCache[bytes] = IdentityCache()


def _line(event_type: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": event_type, "object": obj}) + b"\n"


def _shared_line(event_type: str, obj: dict[str, Any]) -> bytes:
    """The encoded event, once for all plain-JSON watchers of the same event."""
    return _LINES.get(obj, event_type, lambda: _line(event_type, obj))


def _render(res: Resource, obj: dict[str, Any], as_table: bool, include: str,
            first: bool) -> dict[str, Any]:
    if not as_table:
        return obj
    table = tables.to_table(res, [obj], include_object=include)
    if not first:
        table.pop("columnDefinitions", None)
    table.setdefault("metadata", {})["resourceVersion"] = obj["metadata"].get(
        "resourceVersion", "")
    return table


async def _pump(source: AsyncIterator[tuple[str, dict[str, Any]]],
                queue: asyncio.Queue[Any]) -> None:
    try:
        async for item in source:
            await queue.put(item)
    except (APIError, StoreError) as err:
        await queue.put(err)
    finally:
        await queue.put(_END)


async def _stream(request: Request, store: Store, target: Target, flt: Filter, rv: str, *,
                  as_table: bool, bookmarks: bool, timeout: float) -> AsyncIterator[bytes]:
    """Events as they come, several per chunk when they queue up. The timers only
    set flags (and wake an idle stream), so an event costs no timer of its own."""
    res = target.resource
    converted = conversion_for(res) is not None
    include = include_object(request)
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=256)
    pump = asyncio.create_task(_pump(watch_objects(store, stored(res), target.namespace, flt, rv),
                                     queue))
    loop = asyncio.get_running_loop()
    due = {"deadline": False, "bookmark": False}

    def wake(flag: str) -> None:
        due[flag] = True
        if queue.empty():  # the stream waits in get(): an empty queue cannot be full
            queue.put_nowait(_TICK)
        if flag == "bookmark":
            timers.append(loop.call_later(BOOKMARK_INTERVAL, wake, "bookmark"))

    timers = [loop.call_later(timeout, wake, "deadline")]
    if bookmarks:
        timers.append(loop.call_later(BOOKMARK_INTERVAL, wake, "bookmark"))
    last_rv = rv if rv not in ("", "0") else ""
    first = True
    try:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            out: list[bytes] = []
            ended = False
            for item in batch:
                if item is _TICK:
                    continue
                if item is _END or isinstance(item, StoreError):
                    ended = True  # done, dropped as too slow, or store closed: re-watch
                    break
                if isinstance(item, APIError):
                    out.append(_line("ERROR", item.to_status()))
                    ended = True
                    break
                event_type, obj = item
                last_rv = obj["metadata"].get("resourceVersion", last_rv)
                if as_table:
                    out.append(_line(event_type, _render(res, obj, as_table, include, first)))
                    first = False
                elif converted:
                    out.append(_line(event_type, to_served(res, obj)))
                else:
                    out.append(_shared_line(event_type, obj))
            if due["bookmark"] and not ended:
                due["bookmark"] = False
                if last_rv:
                    out.append(_line("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                                  "metadata": {"resourceVersion": last_rv}}))
            if out:
                yield b"".join(out)
            if ended or due["deadline"]:
                return
    finally:
        for timer in timers:
            timer.cancel()
        await cancel_and_wait(pump)
