"""Watches on etcd: one shared stream for the live present, one stream per watch
that starts in the past.

    Follower: ONE etcd watch on the whole root, from open() on ──▶ Broadcaster
       position = the last revision it published; a broken stream resumes from
       position + 1 on another member (no gap, no duplicate)

    watch(prefix, N), N >= position (or "from now"): a Broadcaster subscription
       (SqliteStore's Watcher, live only): every event after N arrives through
       the follower, so a thousand watchers cost one etcd stream, and decoding
       an event once serves all of them
    watch(prefix, N), N < position: EtcdWatcher, its own etcd stream from N that
       etcd replays and then keeps live (rare: a client resuming after a break)

Both are bounded: a follower watcher that falls behind is dropped (WatcherTooSlow);
a private stream is held back instead (it slows no one else).

A private stream starts at N itself, not N+1, and skips the event at N: etcd
refuses a start below its compacted revision C, and the Store contract says a
watch after N < C is Gone, so N = C-1 must be refused too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc  # type: ignore[import-untyped]
from aetcd import rpc  # type: ignore[import-untyped]

from corral.aiotasks import cancel_and_wait
from corral.store.base import Event, EventType, KeyValue
from corral.store.broadcast import Broadcaster
from corral.store.errors import Compacted, StoreError, StoreUnavailable
from corral.store.etcd_rpc import FIRST_BACKOFF, MAX_BACKOFF, EtcdRpc, Message

log = logging.getLogger(__name__)

ETCD_DELETE = 1  # mvccpb.Event.EventType


@dataclass(frozen=True, slots=True)
class KeyRange:
    """A prefix as etcd ranges are written, under the store's root."""
    root: bytes
    start: bytes
    end: bytes

    @classmethod
    def of(cls, root: str, prefix: str) -> KeyRange:
        full = (root + prefix).encode()
        if not full:
            return cls(b"", b"\0", b"\0")  # every key
        return cls(root.encode(), full, prefix_end(full))

    def key(self, raw: bytes) -> str:
        return raw[len(self.root):].decode()


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with ``prefix`` (etcd's rule)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[:i + 1])
    return b"\0"


def to_kv(keys: KeyRange, kv: Message) -> KeyValue:
    return KeyValue(keys.key(kv.key), kv.value, kv.create_revision, kv.mod_revision)


def to_event(keys: KeyRange, ev: Message) -> Event:
    prev = to_kv(keys, ev.prev_kv) if ev.HasField("prev_kv") else None
    kv = ev.kv
    if ev.type == ETCD_DELETE:
        # etcd's delete event carries only the key and the delete's revision; the
        # Store contract wants the last value, which prev_kv holds.
        value, created = (prev.value, prev.create_revision) if prev else (b"", 0)
        return Event(EventType.DELETE,
                     KeyValue(keys.key(kv.key), value, created, kv.mod_revision), prev)
    if kv.create_revision == kv.mod_revision:
        prev = None  # a create (etcd sends no prev_kv for it either)
    return Event(EventType.PUT, to_kv(keys, kv), prev)


_Item = Event | BaseException  # an event, or how the stream ended


async def _pump(rpc_: EtcdRpc, keys: KeyRange, after: int, queue: asyncio.Queue[_Item]) -> None:
    create = rpc.WatchCreateRequest(key=keys.start, range_end=keys.end, start_revision=after,
                                    prev_kv=True)
    call = rpc_.watch.Watch(iter([rpc.WatchRequest(create_request=create)]))
    ended: BaseException
    try:
        async for response in call:
            if response.compact_revision:
                raise Compacted(after, response.compact_revision)
            if response.canceled:
                raise StoreUnavailable(f"etcd cancelled the watch: {response.cancel_reason}")
            for ev in response.events:
                event = to_event(keys, ev)
                if event.revision > after:
                    await queue.put(event)  # a full queue holds etcd back (flow control)
        ended = StoreUnavailable("etcd ended the watch stream")
    except grpc.aio.AioRpcError as err:
        ended = StoreUnavailable(f"etcd watch failed: {err.code().name} {err.details()}")
    except StoreError as err:
        ended = err
    finally:
        call.cancel()
    await queue.put(ended)


class EtcdWatcher(AsyncIterator[Event]):
    """A watch from the past on a stream of its own. It is not dropped when slow:
    it shares nothing, so its full buffer just holds its own stream back. Starts
    streaming when created; cancels its stream on ``aclose()``, when an
    ``__anext__`` is cancelled, when garbage-collected unclosed, and when the
    store closes (then ``__anext__`` raises StoreUnavailable)."""

    def __init__(self, rpc_: EtcdRpc, keys: KeyRange, after: int, capacity: int,
                 watchers: weakref.WeakSet[EtcdWatcher]) -> None:
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(capacity)
        self._ended: BaseException | None = None
        self._task = asyncio.get_running_loop().create_task(
            _pump(rpc_, keys, after, self._queue), name="etcd-watch")
        weakref.finalize(self, self._task.cancel)
        watchers.add(self)

    def __aiter__(self) -> EtcdWatcher:
        return self

    async def __anext__(self) -> Event:
        if self._ended is not None:
            raise self._ended
        try:
            item = await self._queue.get()
        except asyncio.CancelledError:
            await self.aclose()
            raise
        if isinstance(item, BaseException):
            self._ended = item
            raise item
        return item

    async def aclose(self) -> None:
        self._ended = StopAsyncIteration()
        await cancel_and_wait(self._task)

    def store_closed(self) -> None:
        self._ended = StoreUnavailable("store closed")
        self._task.cancel()
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(self._ended)  # wakes a reader waiting on an empty queue


class Follower:
    """The one live etcd watch on the store's root, published to a Broadcaster."""

    def __init__(self, rpc_: EtcdRpc, keys: KeyRange, position: int) -> None:
        self._rpc = rpc_
        self._keys = keys
        self.position = position  # every event up to here has been published
        self.broadcaster = Broadcaster()
        self._task: asyncio.Task[None] | None = None
        self._watching = asyncio.Event()  # etcd confirmed the first stream's watch
        self._batch: list[Event] = []  # received, published at the next loop turn

    async def start(self, timeout: float) -> None:
        """Start following; return once etcd holds the watch, so that nothing
        written (or compacted) after this returns can slip past it."""
        self._task = asyncio.create_task(self._follow(), name="etcd-follower")
        try:
            await asyncio.wait_for(self._watching.wait(), timeout)
        except TimeoutError:
            await self.close()
            raise StoreUnavailable("etcd did not accept the store's watch in time") from None

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        self.broadcaster.close()

    async def _follow(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            try:
                await self._stream()
            except grpc.aio.AioRpcError as err:
                log.info("etcd watch stream broke; resuming from=%d code=%s details=%s",
                         self.position + 1, err.code().name, err.details())
            except StoreError as err:
                log.warning("etcd watch stream ended; resuming from=%d error=%s",
                            self.position + 1, err)
            else:
                backoff = FIRST_BACKOFF
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _stream(self) -> None:
        create = rpc.WatchCreateRequest(key=self._keys.start, range_end=self._keys.end,
                                        start_revision=self.position + 1, prev_kv=True)
        call = self._rpc.watch.Watch(iter([rpc.WatchRequest(create_request=create)]))
        try:
            async for response in call:
                if response.compact_revision:
                    self._lost_history(response.compact_revision)
                    return
                if response.canceled:
                    raise StoreUnavailable(f"etcd cancelled the watch: {response.cancel_reason}")
                self._watching.set()
                if response.events:
                    events = [to_event(self._keys, ev) for ev in response.events]
                    self.position = events[-1].revision
                    self._publish_soon(events)
        finally:
            call.cancel()

    def _publish_soon(self, events: list[Event]) -> None:
        """etcd sends a response per revision; the responses that arrive within
        one turn of the event loop go out as one batch, so a thousand watchers
        wake once for them, not once per write."""
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._flush)
        self._batch.extend(events)

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if batch:
            self.broadcaster.publish(batch)

    def _lost_history(self, compacted: int) -> None:
        """Down for longer than history reaches back: what happened meanwhile is
        gone. Every watcher must re-list, so each is dropped; go on from there."""
        log.warning("etcd watch resumed below compaction; dropping watchers "
                    "position=%d compacted=%d", self.position, compacted)
        self._batch.clear()
        self.broadcaster.drop_all()
        self.position = compacted
