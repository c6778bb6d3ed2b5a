"""SqliteStore: the Store protocol on one SQLite file, in the manner of kine.

Writes are group-committed: callers queue operations, one writer task hands
everything queued to the writer thread, which applies the batch in one
transaction (each compare-and-swap checked inside it) and commits once; then
the events are published to watchers and each caller's future is resolved.
Reads run on their own connections on reader threads. See README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from corral.store.base import DeleteResults, Deletions, Event, Guard, KeyValue, ListResult
from corral.store.broadcast import Broadcaster
from corral.store.errors import StoreError, StoreUnavailable
from corral.store.history import DEFAULT_MAX_AGE
from corral.store.sqlite_compactor import Compactor
from corral.store.sqlite_reads import KeyRange, get, history_page, list_range, revisions
from corral.store.sqlite_schema import connect, create_schema, read_revisions
from corral.store.sqlite_watch import Watcher
from corral.store.sqlite_writes import Create, Delete, Op, Outcome, Update, apply_batch

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 1000  # operations per transaction; bounds one commit's latency
READER_THREADS = 2
DEFAULT_WATCH_BUFFER = 4096  # events a watcher may fall behind before it is dropped

_Pending = tuple[Op, "asyncio.Future[int]"]
_Batch = list[_Pending]  # a name of its own: inside the class, ``list`` is the method
_Events = list[Event]


class SqliteStore:
    """Open with ``await SqliteStore.open(path)``; ``close()`` when done."""

    def __init__(self, path: Path, *, history: int, compact_interval: float,
                 watch_buffer: int, history_seconds: float = DEFAULT_MAX_AGE) -> None:
        self.path = path
        self._watch_buffer = watch_buffer
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="sqlite-reader",
                                           initializer=self._open_reader)
        self._reader_local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._write_conn: sqlite3.Connection | None = None
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._broadcaster = Broadcaster()
        self._revision = 0  # last committed (and published) revision
        self._closed = False
        self._writer_task: asyncio.Task[None] | None = None
        self._compactor = Compactor(self, history=history, interval=compact_interval,
                                    max_age=history_seconds)

    @classmethod
    async def open(cls, path: str | Path, *, history: int = 10000,
                   compact_interval: float = 60.0,
                   watch_buffer: int = DEFAULT_WATCH_BUFFER,
                   history_seconds: float = DEFAULT_MAX_AGE) -> SqliteStore:
        store = cls(Path(path), history=history, compact_interval=compact_interval,
                    watch_buffer=watch_buffer, history_seconds=history_seconds)
        await store.start()
        return store

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._revision, compacted = await loop.run_in_executor(self._writer, self._open_writer)
        self._writer_task = asyncio.create_task(self._write_loop(), name="sqlite-writer")
        self._compactor.start(compacted)
        log.info("store opened path=%s revision=%d compacted=%d", self.path, self._revision,
                 compacted)

    # -- reads -----------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        return await self._on_reader(lambda conn: get(conn, key))

    async def list(self, prefix: str, *, limit: int = 0, start_after: str | None = None,
                   revision: int = 0) -> ListResult:
        keys = KeyRange.of(prefix, start_after)
        return await self._on_reader(lambda conn: list_range(conn, keys, limit, revision))

    async def current_revision(self) -> int:
        return (await self._on_reader(revisions))[0]

    async def compacted_revision(self) -> int:
        return (await self._on_reader(revisions))[1]

    def watch(self, prefix: str, after_revision: int = 0) -> Watcher:
        return Watcher(self._broadcaster, self._history, prefix, after_revision,
                       self._revision, self._watch_buffer)

    async def _history(self, prefix: str, after: int, limit: int, first: bool) -> _Events:
        return await self._on_reader(
            lambda conn: history_page(conn, prefix, after, limit, first=first))

    # -- writes ----------------------------------------------------------------

    async def create(self, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        return await self._submit(Create(key, value, guard))

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     guard: Guard | None = None) -> int:
        return await self._submit(Update(key, value, expected_revision, guard))

    async def delete(self, key: str, expected_revision: int = 0, *,
                     guard: Guard | None = None) -> int:
        return await self._submit(Delete(key, expected_revision, guard))

    async def delete_many(self, deletions: Deletions, *,
                          guard: Guard | None = None) -> DeleteResults:
        """Queued together, so the writer commits them in one transaction (or in
        MAX_BATCH-sized ones), each delete with its own revision and event."""
        if self._closed:
            raise StoreUnavailable("store closed")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[int]] = []
        for d in deletions:
            done: asyncio.Future[int] = loop.create_future()
            self._queue.put_nowait((Delete(d.key, d.expected_revision, guard), done))
            futures.append(done)
        results = await asyncio.gather(*futures, return_exceptions=True)
        return [r if isinstance(r, (int, StoreError)) else _reraise(r) for r in results]

    async def compact(self, revision: int) -> None:
        await self._compactor.compact(revision)

    async def _submit(self, op: Op) -> int:
        if self._closed:
            raise StoreUnavailable("store closed")
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, done))
        return await done

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = self._drain_into(batch)
            await self._commit(batch)
            if stop:
                return

    def _drain_into(self, batch: _Batch) -> bool:
        """Move what is queued into ``batch``; True when the close marker came."""
        while len(batch) < MAX_BATCH and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return True
            batch.append(item)
        return False

    async def _commit(self, batch: _Batch) -> None:
        ops = [op for op, _ in batch]
        revision = self._revision
        try:
            outcomes = await self.on_writer(lambda conn: apply_batch(conn, ops, revision))
        except Exception as err:  # the batch rolled back; the writer task must live on
            log.exception("store write failed path=%s ops=%d", self.path, len(ops))
            outcomes = [StoreUnavailable(f"write failed: {err}")] * len(ops)
        events = [o for o in outcomes if isinstance(o, Event)]
        if events:
            self._revision = events[-1].revision
            self._broadcaster.publish(events)
        for (_, done), outcome in zip(batch, outcomes):
            _settle(done, outcome)

    # -- lifecycle ---------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return {"backend": "sqlite", "path": str(self.path), "revision": self._revision,
                "compacted": self._compactor.compacted}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._compactor.stop()
        if self._writer_task is not None:
            self._queue.put_nowait(None)  # writes already queued still commit
            await self._writer_task
        self._broadcaster.close()
        await self.on_writer(_checkpoint_and_close)
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()
        log.info("store closed path=%s revision=%d", self.path, self._revision)

    @property
    def revision(self) -> int:
        """The last committed revision, as known without a query."""
        return self._revision

    # -- threads -----------------------------------------------------------------

    async def on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with the write connection on the writer thread, serialised
        with write batches (the compactor uses this)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, lambda: fn(self._writer_conn()))

    async def _on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreUnavailable("store closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader_local.conn))

    def _writer_conn(self) -> sqlite3.Connection:
        assert self._write_conn is not None
        return self._write_conn

    def _open_writer(self) -> tuple[int, int]:
        self._write_conn = connect(self.path)
        create_schema(self._write_conn)
        return read_revisions(self._write_conn)

    def _open_reader(self) -> None:
        conn = connect(self.path)
        self._reader_local.conn = conn
        self._reader_conns.append(conn)


def _checkpoint_and_close(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _reraise(error: BaseException) -> int:
    raise error  # not a store outcome (a cancellation): the caller's own


def _settle(done: asyncio.Future[int], outcome: Outcome) -> None:
    if done.done():  # the caller was cancelled; the write happened anyway
        return
    if isinstance(outcome, StoreError):
        done.set_exception(outcome)
    else:
        done.set_result(outcome.revision)
