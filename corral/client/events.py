"""core/v1 Events from any component (scheduler, controllers), aggregated as
client-go's recorder does.

    event(obj, Normal, SuccessfulCreate, msg, component)
       ─► series key (object uid, component, type, reason, message) ─► count += 1
       ─► writer task: the first time POST the Event; later PATCH count and
          lastTimestamp, at most once per ``min_interval`` per series

``event()`` never blocks the caller (a reconcile, the scheduling loop); writes happen in the recorder's own task,
and a write that fails is logged and dropped (events are best effort).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from corral.api.errors import APIError, NotFound
from corral.client.http import Client, ServerUnreachable
from corral.objects import Obj, now_rfc3339

log = logging.getLogger("corral.events")

MAX_SERIES = 8192
NORMAL = "Normal"
WARNING = "Warning"
SeriesKey = tuple[str, str, str, str, str, str]


def object_reference(obj: Obj, field_path: str = "") -> Obj:
    """The event's involvedObject; field_path names a part of it, e.g. a pod's
    container as "spec.containers{web}" (how the kubelet points at one)."""
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": obj.get("apiVersion") or "v1", "kind": obj.get("kind"),
           "namespace": meta.get("namespace"), "name": meta.get("name"),
           "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"),
           "fieldPath": field_path}
    return {k: v for k, v in ref.items() if v}


@dataclass
class Series:
    ref: Obj
    component: str
    type: str
    reason: str
    message: str
    count: int = 0
    first: str = field(default_factory=now_rfc3339)
    last: str = field(default_factory=now_rfc3339)
    name: str = ""  # the Event object's name once created
    next_write: float = 0.0  # monotonic


class EventRecorder:
    def __init__(self, client: Client, instance: str | None = None,
                 min_interval: float = 1.0, component: str = "", host: str = "") -> None:
        self.client = client
        self.instance = instance or socket.gethostname()
        self.min_interval = min_interval
        self.component = component
        self.host = host  # the node a node-local component (the agent) records from
        self._series: OrderedDict[SeriesKey, Series] = OrderedDict()
        self._dirty: set[SeriesKey] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def event(self, obj: Obj, type_: str, reason: str, message: str,
              component: str = "", field_path: str = "") -> None:
        """Record one occurrence; ``component`` defaults to the recorder's own."""
        component = component or self.component
        ref = object_reference(obj, field_path)
        key = (str(ref.get("uid") or ref.get("name")), field_path, component, type_, reason,
               message)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = Series(ref, component, type_, reason, message)
            while len(self._series) > MAX_SERIES:
                old_key, _ = self._series.popitem(last=False)
                self._dirty.discard(old_key)
        self._series.move_to_end(key)
        series.count += 1
        series.last = now_rfc3339()
        self._dirty.add(key)
        self._wakeup.set()
        log.info("event object=%s/%s/%s type=%s reason=%s message=%r", ref.get("kind"),
                 ref.get("namespace", ""), ref.get("name"), type_, reason, message)

    def series(self) -> list[Series]:
        return list(self._series.values())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="events")

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

    async def _write(self, series: Series) -> None:
        series.next_write = time.monotonic() + self.min_interval
        try:
            if series.name:
                try:
                    await self._patch(series)
                except NotFound:
                    series.name = ""
            if not series.name:
                await self._create(series)
        except (APIError, ServerUnreachable) as err:
            log.info("event write failed reason=%s object=%s error=%r", series.reason,
                     series.ref.get("name"), err)

    async def _create(self, series: Series) -> None:
        ref = series.ref
        name = f"{ref.get('name')}.{time.time_ns():x}"
        await self.client.create({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ref.get("namespace") or "default"},
            "involvedObject": ref, "reason": series.reason, "message": series.message,
            "type": series.type, "count": series.count, "firstTimestamp": series.first,
            "lastTimestamp": series.last, "source": self._source(series),
            "reportingComponent": series.component, "reportingInstance": self.instance,
        })
        series.name = name

    def _source(self, series: Series) -> dict[str, str]:
        source = {"component": series.component}
        if self.host:
            source["host"] = self.host
        return source

    async def _patch(self, series: Series) -> None:
        await self.client.patch("Event", series.name,
                                {"count": series.count, "lastTimestamp": series.last},
                                series.ref.get("namespace") or "default")
