"""A list+watch cache of one kind ("informer"), delivering add/update/delete.

    start() ─► list ─► cache := items, synced ─► watch from the list's RV
                 ▲                                   │ ADDED/MODIFIED/DELETED
                 │ Gone, or the watch broke           ▼  → cache → handlers
                 └────────── back-off ◄──────────────┘
                 a clean end of the stream: re-watch from the last RV seen

On a re-list the cache is diffed against the fresh list: objects that vanished
are delivered as deletes, changed ones as updates, so handlers never miss a
transition while the watch was down (they may miss intermediate states).

Cached objects are shared with every handler and reader: NEVER modify an
object from the cache or from a handler argument; copy it first
(copy.deepcopy) and write the copy to the API.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Self

from corral.api.errors import APIError, Gone
from corral.client.backoff import Backoff
from corral.client.clock import Clock, RealClock
from corral.client.http import Client, Kind, ListPage, ServerUnreachable, resource_for
from corral.client.watch import WatchEvent
from corral.objects import Obj, meta

log = logging.getLogger(__name__)

AddHandler = Callable[[Obj], Awaitable[None] | None]
UpdateHandler = Callable[[Obj, Obj], Awaitable[None] | None]
DeleteHandler = Callable[[Obj], Awaitable[None] | None]
IndexFunc = Callable[[Obj], list[str]]


def key_of(obj: Obj) -> str:
    """"namespace/name", or "name" for cluster-scoped objects (the work-queue key)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def _rv(obj: Obj) -> str:
    return str(meta(obj).get("resourceVersion", ""))


def namespace_index(obj: Obj) -> list[str]:
    ns = meta(obj).get("namespace")
    return [ns] if ns else []


class Informer:
    def __init__(self, client: Client, kind: Kind, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = None, clock: Clock | None = None) -> None:
        self.client = client
        self.resource = resource_for(kind)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.resource_version = ""  # the last one seen: list, event or bookmark
        self._clock = clock or RealClock()
        self._cache: dict[str, Obj] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._on_add: list[AddHandler] = []
        self._on_update: list[UpdateHandler] = []
        self._on_delete: list[DeleteHandler] = []
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- configuration (before start) -------------------------------------

    def add_handler(self, on_add: AddHandler | None = None,
                    on_update: UpdateHandler | None = None,
                    on_delete: DeleteHandler | None = None) -> None:
        """Register handlers (sync or async); register them before start()."""
        if on_add:
            self._on_add.append(on_add)
        if on_update:
            self._on_update.append(on_update)
        if on_delete:
            self._on_delete.append(on_delete)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Index the cache by fn(obj) → values; look up with by_index(name, value)."""
        self._index_funcs[name] = fn
        self._indexes[name] = {}
        for key, obj in self._cache.items():
            self._index(name, key, obj)

    # -- the cache ---------------------------------------------------------

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self) -> list[Obj]:
        return list(self._cache.values())

    def keys(self) -> builtins.list[str]:
        return list(self._cache)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        return [self._cache[k] for k in sorted(self._indexes[name].get(value, ()))]

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        if self._tasks:
            return
        name = f"informer-{self.resource.plural}"
        self._tasks.append(asyncio.create_task(self._run(), name=name))
        if self.resync_period:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name=f"{name}-resync"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- list and watch -----------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(initial=0.2, maximum=10.0)
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
                backoff.reset()  # the server ended the stream: re-watch from our RV
            except Gone:
                log.info("informer relist kind=%s reason=gone", self.resource.kind)
                need_list = True
            except (ServerUnreachable, APIError) as err:
                delay = backoff.next_delay()
                log.warning("informer watch broken kind=%s error=%r retry_in=%.2fs",
                            self.resource.kind, err, delay)
                need_list = True
                await self._clock.sleep(delay)

    async def _list(self) -> ListPage:
        return await self.client.list_all(self.resource, self.namespace,
                                          label_selector=self.label_selector,
                                          field_selector=self.field_selector)

    async def _relist(self) -> None:
        page = await self._list()
        fresh = {key_of(obj): obj for obj in page.items}
        old = self._cache
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                await self._added(key, obj)
            elif _rv(before) != _rv(obj):
                await self._updated(key, before, obj)
        for key in [k for k in old if k not in fresh]:
            await self._deleted(key, old[key])
        self.resource_version = page.resource_version
        self._synced.set()

    async def _watch(self) -> None:
        events = self.client.watch(self.resource, self.namespace,
                                   resource_version=self.resource_version,
                                   label_selector=self.label_selector,
                                   field_selector=self.field_selector)
        async for event in events:
            await self._apply(event)

    async def _apply(self, event: WatchEvent) -> None:
        obj = event.object
        if event.resource_version:
            self.resource_version = event.resource_version
        if event.type == "BOOKMARK":
            return
        key = key_of(obj)
        before = self._cache.get(key)
        if event.type == "DELETED":
            if before is not None:
                await self._deleted(key, obj)
        elif before is None:
            await self._added(key, obj)
        else:
            await self._updated(key, before, obj)

    # -- cache changes and delivery ----------------------------------------

    async def _added(self, key: str, obj: Obj) -> None:
        self._store(key, obj)
        for handler in self._on_add:
            await self._call(handler, obj)

    async def _updated(self, key: str, old: Obj, new: Obj) -> None:
        self._store(key, new)
        for handler in self._on_update:
            await self._call(handler, old, new)

    async def _deleted(self, key: str, obj: Obj) -> None:
        self._unindex(key)
        self._cache.pop(key, None)
        for handler in self._on_delete:
            await self._call(handler, obj)

    def _store(self, key: str, obj: Obj) -> None:
        self._unindex(key)
        self._cache[key] = obj
        for name in self._index_funcs:
            self._index(name, key, obj)

    def _index(self, name: str, key: str, obj: Obj) -> None:
        for value in self._index_funcs[name](obj):
            self._indexes[name].setdefault(value, set()).add(key)

    def _unindex(self, key: str) -> None:
        old = self._cache.get(key)
        if old is None:
            return
        for name, fn in self._index_funcs.items():
            for value in fn(old):
                keys = self._indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indexes[name][value]

    async def _call(self, handler: Callable[..., Any], *args: Obj) -> None:
        # A failing handler must not stop delivery to the others or kill the informer.
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("informer handler failed kind=%s handler=%r", self.resource.kind,
                          handler)

    async def _resync_loop(self) -> None:
        """Every resync_period, deliver on_update(obj, obj) for every cached object,
        so level-triggered controllers re-check what they own."""
        assert self.resync_period
        while True:
            await self._clock.sleep(self.resync_period)
            if not self.has_synced:
                continue
            for obj in list(self._cache.values()):
                for handler in self._on_update:
                    await self._call(handler, obj, obj)
