"""core/v1 Events from the scheduler, aggregated as client-go's recorder does.

    event(pod, Warning, FailedScheduling, msg) ─► series key (object uid, type,
        reason, message) ─► count += 1 ─► writer: first time POST the Event,
        later PATCH count and lastTimestamp (a series is written at most once per
        ``min_interval``, so a pod retried in a tight loop costs one write a second)

``event()`` never blocks the scheduling loop; writes happen in the recorder's own
task, and a write that fails is logged and dropped (events are best effort).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from corral.api.errors import APIError, NotFound
from corral.client.http import Client, ServerUnreachable

log = logging.getLogger("corral.scheduler")

Obj = dict[str, Any]
COMPONENT = "default-scheduler"
MAX_SERIES = 4096


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": obj.get("apiVersion") or "v1", "kind": obj.get("kind") or "Pod",
           "namespace": meta.get("namespace"), "name": meta.get("name"),
           "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}


@dataclass
class _Series:
    ref: Obj
    type: str
    reason: str
    message: str
    count: int = 0
    written: int = 0  # the count the API has
    first: str = field(default_factory=now_rfc3339)
    last: str = field(default_factory=now_rfc3339)
    name: str = ""  # the Event's name once created
    next_write: float = 0.0  # monotonic


class EventRecorder:
    def __init__(self, client: Client, component: str = COMPONENT,
                 instance: str | None = None, min_interval: float = 1.0) -> None:
        self.client = client
        self.component = component
        self.instance = instance or socket.gethostname()
        self.min_interval = min_interval
        self._series: OrderedDict[tuple[str, ...], _Series] = OrderedDict()
        self._dirty: set[tuple[str, ...]] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        ref = object_reference(obj)
        key = (str(ref.get("uid") or ref.get("name")), type_, reason, message)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(ref, type_, reason, message)
            while len(self._series) > MAX_SERIES:
                old_key, _ = self._series.popitem(last=False)
                self._dirty.discard(old_key)
        self._series.move_to_end(key)
        series.count += 1
        series.last = now_rfc3339()
        self._dirty.add(key)
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="scheduler-events")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._dirty:
                now = time.monotonic()
                ready = [k for k in self._dirty if self._series[k].next_write <= now]
                for key in ready:
                    self._dirty.discard(key)
                    await self._write(self._series[key])
                if self._dirty and not ready:
                    wait = min(self._series[k].next_write for k in self._dirty) - now
                    await asyncio.sleep(max(wait, 0.0))

    async def _write(self, series: _Series) -> None:
        series.next_write = time.monotonic() + self.min_interval
        count = series.count
        try:
            if series.name:
                try:
                    await self._patch(series, count)
                except NotFound:
                    series.name = ""
            if not series.name:
                await self._create(series, count)
            series.written = count
        except (APIError, ServerUnreachable) as err:
            log.info("event write failed reason=%s object=%s error=%r", series.reason,
                     series.ref.get("name"), err)

    async def _create(self, series: _Series, count: int) -> None:
        ref = series.ref
        name = f"{ref.get('name')}.{time.time_ns():x}"
        await self.client.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ref.get("namespace") or "default"},
            "involvedObject": ref, "reason": series.reason, "message": series.message,
            "type": series.type, "count": count, "firstTimestamp": series.first,
            "lastTimestamp": series.last, "source": {"component": self.component},
            "reportingComponent": self.component, "reportingInstance": self.instance,
        })
        series.name = name

    async def _patch(self, series: _Series, count: int) -> None:
        await self.client.patch("Event", series.name,
                                {"count": count, "lastTimestamp": series.last},
                                series.ref.get("namespace") or "default")
