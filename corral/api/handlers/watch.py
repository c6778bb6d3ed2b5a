"""Watch streams: one JSON event per line, chunked.

    {"type": "ADDED"|"MODIFIED"|"DELETED", "object": {...}}
    {"type": "BOOKMARK", "object": {kind, apiVersion, metadata: {resourceVersion}}}
    {"type": "ERROR", "object": <Status>}      e.g. 410 when history was compacted

A watcher that the store drops for being slow sees its stream end; clients
re-watch from the last resourceVersion they saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import StreamingResponse

from corral.api import tables
from corral.api.errors import APIError, BadRequest, Gone
from corral.api.handlers.responses import include_object, wants_table
from corral.api.paths import Target
from corral.api.registry import Filter, watch_objects
from corral.api.resources import Resource
from corral.store.base import Store
from corral.store.errors import StoreError

BOOKMARK_INTERVAL = 30.0  # seconds without events before a BOOKMARK is sent
_END = object()


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
    await check_not_compacted(store, rv)
    as_table = wants_table(request)
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


def _line(event_type: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": event_type, "object": obj}) + b"\n"


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
    res = target.resource
    include = include_object(request)
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=256)
    pump = asyncio.create_task(_pump(watch_objects(store, res, target.namespace, flt, rv), queue))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_rv = rv if rv not in ("", "0") else ""
    first = True
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                item = await asyncio.wait_for(queue.get(), min(remaining, BOOKMARK_INTERVAL))
            except TimeoutError:
                if bookmarks and last_rv and loop.time() < deadline:
                    yield _line("BOOKMARK", {"kind": res.kind, "apiVersion": res.api_version,
                                             "metadata": {"resourceVersion": last_rv}})
                continue
            if item is _END:
                return
            if isinstance(item, APIError):
                yield _line("ERROR", item.to_status())
                return
            if isinstance(item, StoreError):
                return  # dropped as too slow, or the store closed: the client re-watches
            event_type, obj = item
            last_rv = obj["metadata"].get("resourceVersion", last_rv)
            yield _line(event_type, _render(res, obj, as_table, include, first))
            first = False
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
