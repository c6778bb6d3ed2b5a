"""EtcdStore: the Store protocol on a real etcd (v3 API), for several masters.

etcd already is the model the Store protocol copies, so this is a thin mapping:

    Store                     etcd
    key                       root + key (kube-apiserver's /registry/... layout)
    revision, mod_revision    the header revision, the key's mod_revision
    create(k)                 Txn(create_revision(k) == 0 ? put : range)
    update(k, rev)            Txn(mod_revision(k) == rev, exists ? put : range)
    delete(k[, rev])          Txn(exists[, mod_revision == rev] ? delete : range)
    list(prefix, rev)         Range(prefix, limit, revision)
    watch(prefix, N)          Watch(prefix, start_revision=N, prev_kv); etcd_watch.py
    compact(rev)              Compaction(rev); every compact_interval s automatically

A write whose first attempt failed in an ambiguous way (connection lost, leader
changed) is retried; if the retry then finds the key holding exactly the value
it wrote, the first attempt did land and the write is reported as done instead
of as a conflict. Every call is bounded by ``timeout``: an unreachable etcd is
StoreUnavailable (HTTP 503), never a hang. See etcd_rpc.py for endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc  # type: ignore[import-untyped]
from aetcd import rpc  # type: ignore[import-untyped]

from corral.aiotasks import cancel_and_wait
from corral.store.base import DeleteResults, Deletions, Event, Guard, KeyValue, ListResult
from corral.store.errors import (
    Compacted,
    GuardFailed,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    StoreError,
    StoreUnavailable,
)
from corral.store.etcd_rpc import EtcdRpc, Message, Method, parse_endpoints
from corral.store.etcd_watch import EtcdWatcher, Follower, KeyRange, to_kv
from corral.store.history import DEFAULT_MAX_AGE, HistoryWindow
from corral.store.sqlite_watch import Watcher

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0  # seconds for one store call, retries included
DEFAULT_WATCH_BUFFER = 4096
MEMBER_TIMEOUT = 1.0  # seconds to wait for one member's status
# etcd's --max-txn-ops (default 128) bounds a txn's compares and each branch's
# ops: one compare and one delete per key, plus the guard's compare.
TXN_DELETES = 127
_Ops = list[Message]  # a name of its own: inside the class, ``list`` is the method
_Indices = list[int]
_EQUAL, _GREATER = rpc.Compare.CompareResult.EQUAL, rpc.Compare.CompareResult.GREATER
_CREATE, _MOD = rpc.Compare.CompareTarget.CREATE, rpc.Compare.CompareTarget.MOD


@dataclass
class _Attempts:
    """Set when a write is retried: its first try may have been applied."""
    retried: bool = False

    def mark(self) -> None:
        self.retried = True


def _exists(key: bytes) -> Message:
    return rpc.Compare(key=key, target=_CREATE, result=_GREATER, create_revision=0)


def _absent(key: bytes) -> Message:
    return rpc.Compare(key=key, target=_CREATE, result=_EQUAL, create_revision=0)


def _mod_is(key: bytes, revision: int) -> Message:
    return rpc.Compare(key=key, target=_MOD, result=_EQUAL, mod_revision=revision)


def _guard_moved(answer: Message, guard: Guard, results: list[int | StoreError],
                 pending: list[int]) -> bool:
    kvs = answer.response_range.kvs
    actual = int(kvs[0].mod_revision) if kvs else 0
    if actual == guard.mod_revision:
        return False
    for i in pending:
        results[i] = GuardFailed(guard.key, guard.mod_revision, actual)
    return True


def _get(key: bytes) -> Message:
    return rpc.RequestOp(request_range=rpc.RangeRequest(key=key))


async def _no_history(prefix: str, after: int, limit: int, first: bool) -> list[Event]:
    raise AssertionError("a follower watch never replays")  # Watcher(after_revision=0)


async def member_status(member: Message) -> dict[str, Any]:
    """One member asked directly (not through the shared channel, which would
    answer from any member): is it up, and does it lead?"""
    url = member.clientURLs[0] if member.clientURLs else ""
    report: dict[str, Any] = {"name": member.name, "id": f"{member.ID:x}",
                              "endpoint": url.removeprefix("http://"), "healthy": False,
                              "leader": False}
    if not url:
        report["error"] = "no client URL (not started yet)"
        return report
    channel = grpc.aio.insecure_channel(url.removeprefix("http://"))
    try:
        status = await rpc.MaintenanceStub(channel).Status(rpc.StatusRequest(),
                                                           timeout=MEMBER_TIMEOUT)
        report.update(healthy=True, leader=status.leader == status.header.member_id,
                      raft_term=status.raftTerm, db_size=status.dbSize,
                      version=status.version)
    except grpc.aio.AioRpcError as err:
        report["error"] = err.code().name  # UNAVAILABLE: down; DEADLINE_EXCEEDED: stalled
    finally:
        await channel.close()
    return report


def _is_compacted(err: grpc.aio.AioRpcError) -> bool:
    return bool(err.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in err.details())


class EtcdStore:
    """Open with ``await EtcdStore.open("h1:2379,h2:2379")``; ``close()`` when done."""

    def __init__(self, rpc_: EtcdRpc, *, root: str, history: int, compact_interval: float,
                 watch_buffer: int, history_seconds: float = DEFAULT_MAX_AGE) -> None:
        self._rpc = rpc_
        self.root = root
        self._history = history
        self._window = HistoryWindow(history, history_seconds)  # store/history.py
        self._compact_interval = compact_interval
        self._watch_buffer = watch_buffer
        self._known = 0  # highest revision any answer carried
        self._compacted = 0  # highest compacted revision learnt
        self._closed = False
        self._watchers: weakref.WeakSet[EtcdWatcher] = weakref.WeakSet()
        self._follower: Follower | None = None
        self._compactor: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, endpoints: str, *, root: str = "", timeout: float = DEFAULT_TIMEOUT,
                   history: int = 10000, compact_interval: float = 300.0,
                   watch_buffer: int = DEFAULT_WATCH_BUFFER,
                   history_seconds: float = DEFAULT_MAX_AGE) -> EtcdStore:
        """Connect and check etcd answers (StoreUnavailable if not within ``timeout``)."""
        store = cls(EtcdRpc(parse_endpoints(endpoints), timeout=timeout), root=root,
                    history=history, compact_interval=compact_interval,
                    watch_buffer=watch_buffer, history_seconds=history_seconds)
        try:
            revision = await store.current_revision()
            store._follower = Follower(store._rpc, store._range(""), revision)
            await store._follower.start(timeout)
        except BaseException:
            await store._rpc.close()
            raise
        if compact_interval > 0 and history > 0:
            store._compactor = asyncio.create_task(store._compact_forever(),
                                                   name="etcd-compactor")
        log.info("store opened etcd=%s root=%r revision=%d", store._rpc.describe(), root,
                 revision)
        return store

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        return list(self._rpc.endpoints)

    # -- reads ---------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._call(self._rpc.kv.Range, rpc.RangeRequest(key=self._key(key)))
        return to_kv(self._range(""), resp.kvs[0]) if resp.kvs else None

    async def list(self, prefix: str, *, limit: int = 0, start_after: str | None = None,
                   revision: int = 0) -> ListResult:
        keys = self._range(prefix)
        start = self._key(start_after) + b"\0" if start_after is not None else keys.start
        request = rpc.RangeRequest(key=start, range_end=keys.end, limit=max(limit, 0),
                                   revision=max(revision, 0))
        try:
            resp = await self._call(self._rpc.kv.Range, request)
        except grpc.aio.AioRpcError as err:
            if _is_compacted(err):
                raise Compacted(revision, await self.compacted_revision()) from None
            raise ValueError(f"cannot list at revision {revision}: {err.details()}") from None
        items = [to_kv(keys, kv) for kv in resp.kvs]
        return ListResult(items, revision or resp.header.revision, bool(resp.more))

    async def current_revision(self) -> int:
        request = rpc.RangeRequest(key=self._range("").start, limit=1, keys_only=True)
        return int((await self._call(self._rpc.kv.Range, request)).header.revision)

    async def compacted_revision(self) -> int:
        """etcd does not say; the smallest revision a range can still be read at
        tells. The last answer is checked first (two calls), else bisected."""
        known = self._compacted
        if known <= 1:
            if await self._readable(1):
                return 0  # never compacted
            low, high = 1, await self.current_revision()
        elif not await self._readable(known):
            low, high = known, await self.current_revision()
        elif not await self._readable(known - 1):
            return known
        else:  # readable below what we knew: a younger etcd replaced the old one
            self._compacted = 0
            return await self.compacted_revision()
        while low + 1 < high:  # invariant: low unreadable, high readable
            middle = (low + high) // 2
            low, high = (low, middle) if await self._readable(middle) else (middle, high)
        self._compacted = high
        return high

    async def _readable(self, revision: int) -> bool:
        request = rpc.RangeRequest(key=self._range("").start, limit=1, keys_only=True,
                                   revision=revision, serializable=True)
        try:
            await self._call(self._rpc.kv.Range, request)
        except grpc.aio.AioRpcError as err:
            if _is_compacted(err):
                return False
            raise
        return True

    def watch(self, prefix: str, after_revision: int = 0) -> Watcher | EtcdWatcher:
        """Through the shared follower when it has not yet passed
        ``after_revision``, else on a stream of its own (see etcd_watch.py)."""
        self._check_open()
        follower = self._follower
        assert follower is not None
        position = follower.position
        if after_revision <= 0 or after_revision >= position:
            after = after_revision if after_revision > 0 else max(self._known, position)
            return Watcher(follower.broadcaster, _no_history, prefix, 0, after,
                           self._watch_buffer)
        return EtcdWatcher(self._rpc, self._range(prefix), after_revision, self._watch_buffer,
                           self._watchers)

    # -- writes ----------------------------------------------------------------------

    async def create(self, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        k = self._key(key)
        put = rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))
        attempts = _Attempts()
        resp = await self._txn([_absent(k)], [put], k, guard, attempts)
        if resp.succeeded:
            return int(resp.header.revision)
        current = resp.responses[0].response_range.kvs[0]
        if attempts.retried and current.value == value:
            return int(current.mod_revision)  # our first attempt landed
        raise KeyExists(key)

    async def update(self, key: str, value: bytes, expected_revision: int, *,
                     guard: Guard | None = None) -> int:
        k = self._key(key)
        put = rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))
        attempts = _Attempts()
        resp = await self._txn([_exists(k), _mod_is(k, expected_revision)], [put], k, guard,
                               attempts)
        if resp.succeeded:
            return int(resp.header.revision)
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            raise KeyNotFound(key)
        current = kvs[0]
        if attempts.retried and current.value == value and current.mod_revision > expected_revision:
            return int(current.mod_revision)
        raise RevisionMismatch(key, expected_revision, int(current.mod_revision))

    async def delete(self, key: str, expected_revision: int = 0, *,
                     guard: Guard | None = None) -> int:
        k = self._key(key)
        compares = [_exists(k)] + ([_mod_is(k, expected_revision)] if expected_revision > 0
                                   else [])
        remove = rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k))
        attempts = _Attempts()
        resp = await self._txn(compares, [remove], k, guard, attempts)
        if resp.succeeded:
            return int(resp.header.revision)
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            if attempts.retried:
                return int(resp.header.revision)  # our first attempt removed it
            raise KeyNotFound(key)
        raise RevisionMismatch(key, expected_revision, int(kvs[0].mod_revision))

    async def delete_many(self, deletions: Deletions, *,
                          guard: Guard | None = None) -> DeleteResults:
        """One txn per TXN_DELETES keys: compares (a CAS, or "exists") and
        deletes all in one, and on failure its reads tell which keys failed;
        the others go again in the next txn."""
        results: DeleteResults = [StoreUnavailable("not attempted")] * len(deletions)
        for start in range(0, len(deletions), TXN_DELETES):
            chunk = list(range(start, min(start + TXN_DELETES, len(deletions))))
            try:
                await self._delete_chunk(deletions, chunk, results, guard)
            except StoreUnavailable as err:
                for i in chunk:
                    if isinstance(results[i], StoreUnavailable):
                        results[i] = err
        return results

    async def _delete_chunk(self, deletions: Deletions, pending: _Indices,
                            results: DeleteResults, guard: Guard | None) -> None:
        attempts = _Attempts()
        while pending:
            keys = [self._key(deletions[i].key) for i in pending]
            compares = [_mod_is(k, deletions[i].expected_revision)
                        if deletions[i].expected_revision > 0 else _exists(k)
                        for i, k in zip(pending, keys)]
            removes = [rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k))
                       for k in keys]
            reads = [_get(k) for k in keys]
            if guard is not None:
                compares.append(_mod_is(self._key(guard.key), guard.mod_revision))
                reads.append(_get(self._key(guard.key)))
            resp = await self._call(self._rpc.kv.Txn, rpc.TxnRequest(
                compare=compares, success=removes, failure=reads), on_retry=attempts.mark)
            if resp.succeeded:
                for i in pending:
                    results[i] = int(resp.header.revision)
                return
            if guard is not None and _guard_moved(resp.responses[-1], guard, results, pending):
                return
            pending = self._settle_failed(deletions, pending, resp, results, attempts)

    @staticmethod
    def _settle_failed(deletions: Deletions, pending: _Indices, resp: Message,
                       results: DeleteResults, attempts: _Attempts) -> _Indices:
        """Record the keys whose compare failed; the rest go again."""
        again: _Indices = []
        for i, answer in zip(pending, resp.responses):
            kvs, d = answer.response_range.kvs, deletions[i]
            if not kvs:  # gone: by us, if an earlier attempt may have landed
                results[i] = (int(resp.header.revision) if attempts.retried
                              else KeyNotFound(d.key))
            elif d.expected_revision > 0 and int(kvs[0].mod_revision) != d.expected_revision:
                results[i] = RevisionMismatch(d.key, d.expected_revision,
                                              int(kvs[0].mod_revision))
            else:
                again.append(i)
        if len(again) == len(pending):  # no compare failed as read: never loop on it
            for i in again:
                results[i] = StoreUnavailable("etcd refused the delete transaction")
            return []
        return again

    async def _txn(self, compares: _Ops, success: _Ops, key: bytes, guard: Guard | None,
                   attempts: _Attempts) -> Message:
        """The write's transaction; on failure its first response reads ``key``. A
        guard adds a compare on its key (and raises GuardFailed if that failed)."""
        failure = [_get(key)]
        if guard is not None:
            guard_key = self._key(guard.key)
            compares = [*compares, _mod_is(guard_key, guard.mod_revision)]
            failure.append(_get(guard_key))
        request = rpc.TxnRequest(compare=compares, success=success, failure=failure)
        resp = await self._call(self._rpc.kv.Txn, request, on_retry=attempts.mark)
        if guard is not None and not resp.succeeded:
            kvs = resp.responses[1].response_range.kvs
            actual = int(kvs[0].mod_revision) if kvs else 0
            if actual != guard.mod_revision:
                raise GuardFailed(guard.key, guard.mod_revision, actual)
        return resp

    # -- compaction --------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Forget history below ``revision`` cluster-wide (etcd's compaction);
        an already compacted revision is a no-op."""
        current = await self.current_revision()
        if revision > current:
            raise ValueError(f"cannot compact revision {revision}: the store is at {current}")
        try:
            await self._call(self._rpc.kv.Compact, rpc.CompactionRequest(revision=revision))
        except grpc.aio.AioRpcError as err:
            if not _is_compacted(err):
                raise
            return  # another master (or an earlier call) compacted further already
        self._compacted = max(self._compacted, revision)
        log.info("store compacted revision=%d", revision)

    async def _compact_forever(self) -> None:
        """Every compact_interval: keep the last ``history`` revisions, none older
        than ``history_seconds`` (history.py). Several masters each run this;
        compacting what another compacted is a no-op."""
        while True:
            await asyncio.sleep(self._compact_interval)
            try:
                target = self._window.target(await self.current_revision())
                if target > self._compacted:
                    await self.compact(target)
            except Exception:
                log.warning("store automatic compaction failed", exc_info=True)

    # -- status ----------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        members = (await self._call(self._rpc.cluster.MemberList,
                                    rpc.MemberListRequest())).members
        reports = await asyncio.gather(*(member_status(m) for m in members))
        return {"backend": "etcd", "endpoints": self._rpc.describe(), "root": self.root,
                "revision": await self.current_revision(),
                "compacted": await self.compacted_revision(),
                "members": sorted(reports, key=lambda r: str(r["name"]))}

    # -- lifecycle -------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._compactor is not None:
            await cancel_and_wait(self._compactor)
        for watcher in list(self._watchers):
            watcher.store_closed()
        if self._follower is not None:
            await self._follower.close()
        await self._rpc.close()
        log.info("store closed etcd=%s revision=%d", self._rpc.describe(), self._known)

    @property
    def revision(self) -> int:
        """The highest revision seen, without a call (for metrics)."""
        return max(self._known, self._follower.position if self._follower else 0)

    # -- helpers -----------------------------------------------------------------------

    async def _call(self, method: Method, request: Message, *,
                    on_retry: Callable[[], None] | None = None) -> Message:
        self._check_open()
        resp = await self._rpc.call(method, request, on_retry=on_retry)
        self._known = max(self._known, int(resp.header.revision))
        return resp

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("store closed")

    def _key(self, key: str) -> bytes:
        return (self.root + key).encode()

    def _range(self, prefix: str) -> KeyRange:
        return KeyRange.of(self.root, prefix)
