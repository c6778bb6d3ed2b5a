"""The Store contract (corral/store/base.py), run against every backend.

Written against the Store protocol only: no test here knows which backend it
drives. Backend knobs (watch buffer size, automatic compaction) come from the
fixtures in conftest.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from corral.store.base import Deletion, Event, EventType, Guard, KeyValue, Store
from corral.store.errors import (
    Compacted,
    GuardFailed,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    StoreUnavailable,
    WatcherTooSlow,
)
from tests.store.conftest import StoreFactory

WAIT = 30.0  # seconds a test waits for something that should happen promptly (a busy machine)


async def take(watch: AsyncIterator[Event], n: int) -> list[Event]:
    async def collect() -> list[Event]:
        return [await anext(watch) for _ in range(n)]

    return await asyncio.wait_for(collect(), WAIT)


async def write_many(store: Store, keys: list[str], writers: int = 20) -> list[int]:
    """Create ``keys`` from ``writers`` concurrent tasks; the revisions, sorted."""
    queue = list(keys)
    revisions: list[int] = []

    async def writer() -> None:
        while queue:
            revisions.append(await store.create(queue.pop(), b"v"))

    await asyncio.gather(*(writer() for _ in range(writers)))
    return sorted(revisions)


# -- create / get / update / delete -------------------------------------------------


async def test_create_then_get(store: Store) -> None:
    rev = await store.create("/k/a", b"one")
    assert await store.get("/k/a") == KeyValue("/k/a", b"one", rev, rev)
    assert await store.get("/k/missing") is None


async def test_create_of_present_key_raises_key_exists(store: Store) -> None:
    await store.create("/k/a", b"one")
    with pytest.raises(KeyExists):
        await store.create("/k/a", b"two")
    assert (await store.get("/k/a")) is not None
    assert (await store.get("/k/a")).value == b"one"  # type: ignore[union-attr]


async def test_update_is_compare_and_swap(store: Store) -> None:
    created = await store.create("/k/a", b"one")
    updated = await store.update("/k/a", b"two", created)
    assert await store.get("/k/a") == KeyValue("/k/a", b"two", created, updated)
    with pytest.raises(RevisionMismatch) as err:
        await store.update("/k/a", b"three", created)
    assert (err.value.expected, err.value.actual) == (created, updated)
    with pytest.raises(KeyNotFound):
        await store.update("/k/missing", b"x", 1)


async def test_delete_unconditional_and_compare_and_swap(store: Store) -> None:
    first = await store.create("/k/a", b"one")
    await store.create("/k/b", b"one")
    with pytest.raises(RevisionMismatch):
        await store.delete("/k/a", first + 100)
    deleted = await store.delete("/k/a", first)
    assert deleted > first
    assert await store.get("/k/a") is None
    assert await store.delete("/k/b") > deleted
    with pytest.raises(KeyNotFound):
        await store.delete("/k/a")
    again = await store.create("/k/a", b"new")
    assert await store.get("/k/a") == KeyValue("/k/a", b"new", again, again)


async def test_delete_many_settles_each_key_on_its_own(store: Store) -> None:
    """Beyond one etcd transaction's op limit (128), with a lost CAS and an absent
    key among them: the others are deleted, each with its own DELETE event."""
    keys = [f"/many/{i:04d}" for i in range(200)]  # the watch buffer is 256
    revisions = {k: await store.create(k, k.encode()) for k in keys}
    start = await store.current_revision()
    watch = store.watch("/many/", start)
    deletions = [Deletion(k, revisions[k]) for k in keys]
    deletions[7] = Deletion(keys[7], revisions[keys[7]] + 1000)  # a lost CAS
    deletions[150] = Deletion(keys[150])  # unconditional
    deletions.append(Deletion("/many/absent"))
    results = await store.delete_many(deletions)
    assert isinstance(results[7], RevisionMismatch)
    assert isinstance(results[-1], KeyNotFound)
    done = [r for i, r in enumerate(results) if i not in (7, len(keys))]
    assert all(isinstance(r, int) and r > start for r in done)
    events = await take(watch, len(keys) - 1)
    assert [e.kv.key for e in events] == [k for i, k in enumerate(keys) if i != 7]
    assert all(e.type is EventType.DELETE and e.prev is not None
               and e.prev.value == e.kv.key.encode() for e in events)
    assert [e.revision for e in events] == sorted(e.revision for e in events)
    assert (await store.list("/many/")).items == [await store.get(keys[7])]
    await watch.aclose()  # type: ignore[attr-defined]


async def test_every_write_bumps_the_one_global_revision(store: Store) -> None:
    start = await store.current_revision()
    revs = [
        await store.create("/x/a", b"1"),
        await store.create("/y/b", b"1"),
        await store.update("/x/a", b"2", start + 1),
        await store.delete("/y/b"),
    ]
    assert revs == [start + 1, start + 2, start + 3, start + 4]
    with pytest.raises(KeyExists):
        await store.create("/x/a", b"again")
    with pytest.raises(RevisionMismatch):
        await store.update("/x/a", b"3", start + 1)
    assert await store.current_revision() == start + 4  # failed writes bump nothing
    assert await store.create("/z/c", b"1") == start + 5


async def test_concurrent_compare_and_swap_counter_loses_no_update(store: Store) -> None:
    await store.create("/counter", b"0")
    workers, increments = 20, 10
    mismatches = 0

    async def increment() -> None:
        nonlocal mismatches
        done = 0
        while done < increments:
            kv = await store.get("/counter")
            assert kv is not None
            try:
                await store.update("/counter", str(int(kv.value) + 1).encode(), kv.mod_revision)
                done += 1
            except RevisionMismatch:
                mismatches += 1

    await asyncio.gather(*(increment() for _ in range(workers)))
    final = await store.get("/counter")
    assert final is not None
    assert int(final.value) == workers * increments
    assert final.mod_revision == final.create_revision + workers * increments


async def test_concurrent_creates_of_one_key_have_one_winner(store: Store) -> None:
    results = await asyncio.gather(*(store.create("/once", str(i).encode())
                                     for i in range(30)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert all(isinstance(r, KeyExists) for r in results if not isinstance(r, int))


# -- list -------------------------------------------------------------------------


async def test_list_by_prefix_in_key_order(store: Store) -> None:
    names = [f"/p/{i:03d}" for i in range(30)]
    await write_many(store, random.sample(names, len(names)) + ["/q/1", "/p", "/pz"])
    result = await store.list("/p/")
    assert [kv.key for kv in result.items] == names
    assert not result.more
    assert result.revision == await store.current_revision()
    assert [kv.key for kv in (await store.list("")).items][:2] == ["/p", "/p/000"]


async def test_list_pages_with_limit_and_start_after(store: Store) -> None:
    names = [f"/p/{i:03d}" for i in range(25)]
    await write_many(store, names)
    first = await store.list("/p/", limit=10)
    seen = [kv.key for kv in first.items]
    assert first.more and len(seen) == 10
    await store.create("/p/000a", b"written after the first page")
    page = first
    while page.more:
        page = await store.list("/p/", limit=10, start_after=seen[-1], revision=first.revision)
        assert page.revision == first.revision
        seen += [kv.key for kv in page.items]
    assert seen == names  # the paged list is the state at the first page's revision
    exact = await store.list("/p/", limit=26)
    assert not exact.more and len(exact.items) == 26


async def test_list_at_an_old_revision(store: Store) -> None:
    a = await store.create("/p/a", b"a1")
    b = await store.create("/p/b", b"b1")
    await store.update("/p/a", b"a2", a)
    await store.delete("/p/b")
    await store.create("/p/c", b"c1")
    old = await store.list("/p/", revision=b)
    assert old.items == [KeyValue("/p/a", b"a1", a, a), KeyValue("/p/b", b"b1", b, b)]
    assert old.revision == b
    paged = await store.list("/p/", revision=b, limit=1, start_after="/p/a")
    assert [kv.key for kv in paged.items] == ["/p/b"] and not paged.more
    now = await store.list("/p/")
    assert [(kv.key, kv.value) for kv in now.items] == [("/p/a", b"a2"), ("/p/c", b"c1")]


# -- watch -------------------------------------------------------------------------


async def test_watch_replays_after_revision_then_goes_live(store: Store) -> None:
    a = await store.create("/w/a", b"1")
    mark = await store.create("/w/b", b"1")
    upd = await store.update("/w/a", b"2", a)
    dele = await store.delete("/w/b")
    watch = store.watch("/w/", mark)
    replayed = await take(watch, 2)
    assert replayed == [
        Event(EventType.PUT, KeyValue("/w/a", b"2", a, upd), KeyValue("/w/a", b"1", a, a)),
        Event(EventType.DELETE, KeyValue("/w/b", b"1", mark, dele),
              KeyValue("/w/b", b"1", mark, mark)),
    ]
    live = await store.create("/w/c", b"1")
    (event,) = await take(watch, 1)
    assert event == Event(EventType.PUT, KeyValue("/w/c", b"1", live, live), None)
    assert event.is_create and event.revision == live


async def test_watch_from_now_sees_only_later_changes(store: Store) -> None:
    await store.create("/w/before", b"1")
    watch = store.watch("/w/")
    rev = await store.create("/w/after", b"1")
    assert [ev.revision for ev in await take(watch, 1)] == [rev]


async def test_watch_filters_by_prefix(store: Store) -> None:
    watch = store.watch("/w/in/")
    await store.create("/w/out/1", b"1")
    await store.create("/w/in", b"not under the prefix /w/in/")
    inside = await store.create("/w/in/1", b"1")
    await store.create("/w/inx/1", b"1")
    after = await store.create("/w/in/2", b"1")
    assert [ev.kv.key for ev in await take(watch, 2)] == ["/w/in/1", "/w/in/2"]
    replay = store.watch("/w/in/", inside - 1)
    assert [ev.revision for ev in await take(replay, 2)] == [inside, after]


async def test_watch_hands_over_from_replay_to_live_without_gap_or_duplicate(
        store: Store) -> None:
    start = (await write_many(store, [f"/h/old{i}" for i in range(30)]))[10]
    watch = store.watch("/h/", start)
    # Written after watch() but before its first read: history and live both hold
    # these, and the watch must deliver each exactly once.
    await write_many(store, [f"/h/both{i}" for i in range(30)])
    writing = True

    async def keep_writing() -> None:
        i = 0
        while writing:
            await store.create(f"/h/new{i}", b"x")
            i += 1

    writer = asyncio.create_task(keep_writing())
    try:
        events = await take(watch, 200)
    finally:
        writing = False
        await writer
    assert [ev.revision for ev in events] == list(range(start + 1, start + 201))


async def test_thousand_watchers_all_receive_every_event(store: Store) -> None:
    watches = [store.watch("/burst/") for _ in range(1000)]
    expected = await write_many(store, [f"/burst/{i}" for i in range(100)], writers=50)
    received = await asyncio.gather(*(take(w, 100) for w in watches))
    for events in received:
        assert [ev.revision for ev in events] == expected


async def test_slow_watcher_is_dropped_while_others_keep_receiving(
        store: Store, watch_buffer: int) -> None:
    start = await store.create("/s/", b"first")  # > 0: re-watching from 0 means "from now"
    slow = store.watch("/s/")
    fast = store.watch("/s/")
    count = 3 * watch_buffer
    fast_events = asyncio.create_task(take(fast, count))
    revisions = await write_many(store, [f"/s/{i}" for i in range(count)])
    assert [ev.revision for ev in await fast_events] == revisions
    with pytest.raises(WatcherTooSlow) as err:
        await asyncio.wait_for(anext(slow), WAIT)
    assert err.value.last_revision == start
    again = store.watch("/s/", err.value.last_revision)
    assert [ev.revision for ev in await take(again, count)] == revisions


async def test_closed_watch_ends(store: Store) -> None:
    watch = store.watch("/c/")
    await store.create("/c/1", b"1")
    await watch.aclose()  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):
        await anext(watch)


# -- compaction ----------------------------------------------------------------------


async def test_compaction_forgets_history_but_keeps_current_values(store: Store) -> None:
    a = await store.create("/c/a", b"1")
    b = await store.create("/c/b", b"1")
    await store.update("/c/a", b"2", a)
    gone = await store.create("/c/gone", b"1")
    mark = await store.delete("/c/gone")
    after = await store.update("/c/b", b"2", b)
    await store.compact(mark)
    assert await store.compacted_revision() == mark
    for rev in (a, mark - 1):
        with pytest.raises(Compacted):
            await anext(store.watch("/c/", rev))
        with pytest.raises(Compacted):
            await store.list("/c/", revision=rev)
    # At the compacted revision itself history is complete, as in etcd.
    assert [kv.key for kv in (await store.list("/c/", revision=mark)).items] == ["/c/a", "/c/b"]
    nxt = await store.create("/c/next", b"1")
    assert nxt == after + 1  # revisions go on from where they were
    (event,) = await take(store.watch("/c/", after), 1)
    assert event.revision == nxt
    assert [(kv.key, kv.value) for kv in (await store.list("/c/", revision=after)).items] == [
        ("/c/a", b"2"), ("/c/b", b"2")]
    assert [(kv.key, kv.value) for kv in (await store.list("/c/")).items] == [
        ("/c/a", b"2"), ("/c/b", b"2"), ("/c/next", b"1")]
    assert await store.get("/c/gone") is None and gone < mark


async def test_list_at_revision_after_compaction_sees_kept_values(store: Store) -> None:
    a = await store.create("/c/a", b"1")
    b = await store.create("/c/b", b"1")
    upd = await store.update("/c/b", b"2", b)
    later = await store.update("/c/a", b"2", a)
    await store.compact(upd - 1)
    at_upd = await store.list("/c/", revision=upd)
    assert [(kv.key, kv.value) for kv in at_upd.items] == [("/c/a", b"1"), ("/c/b", b"2")]
    assert [ev.revision for ev in await take(store.watch("/c/", upd), 1)] == [later]


async def test_automatic_compaction_bounds_history(store_factory: StoreFactory) -> None:
    store = await store_factory(history=20, compact_interval=0.05)
    rev = await store.create("/auto/k", b"0")
    for i in range(100):
        rev = await store.update("/auto/k", str(i).encode(), rev)

    async def compacted_enough() -> None:
        while await store.compacted_revision() < rev - 20:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(compacted_enough(), WAIT)
    with pytest.raises(Compacted):
        await anext(store.watch("/auto/", 1))
    recent = await take(store.watch("/auto/", rev - 10), 10)
    assert [ev.revision for ev in recent] == list(range(rev - 9, rev + 1))
    kv = await store.get("/auto/k")
    assert kv is not None and kv.value == b"99"


# -- close -----------------------------------------------------------------------------


async def test_close_ends_watchers_and_refuses_writes(store: Store) -> None:
    watch = store.watch("/z/")
    waiting: asyncio.Future[Event] = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)
    await store.close()
    with pytest.raises((StoreUnavailable, StopAsyncIteration)):
        await asyncio.wait_for(waiting, WAIT)
    with pytest.raises(StoreUnavailable):
        await store.create("/z/1", b"1")


# -- guarded writes (fencing) ------------------------------------------------------------


async def test_a_guarded_write_applies_only_while_its_guard_holds(store: Store) -> None:
    lease = await store.create("/lease", b"a")
    guard = Guard("/lease", lease)
    first = await store.create("/g/1", b"1", guard=guard)
    second = await store.update("/g/1", b"2", first, guard=guard)
    renewed = await store.update("/lease", b"b", lease)
    before = await store.current_revision()
    with pytest.raises(GuardFailed) as err:
        await store.create("/g/2", b"1", guard=guard)
    assert (err.value.key, err.value.expected, err.value.actual) == ("/lease", lease, renewed)
    with pytest.raises(GuardFailed):
        await store.update("/g/1", b"3", second, guard=guard)
    with pytest.raises(GuardFailed):
        await store.delete("/g/1", guard=guard)
    assert await store.current_revision() == before  # refused writes wrote nothing
    assert (await store.get("/g/1")).value == b"2"  # type: ignore[union-attr]
    assert await store.get("/g/2") is None
    await store.delete("/lease")
    with pytest.raises(GuardFailed) as err:
        await store.create("/g/3", b"1", guard=Guard("/lease", renewed))
    assert err.value.actual == 0  # a guard key that is gone fails too
    assert await store.delete("/g/1", guard=None) > before


async def test_guarded_delete_many_deletes_nothing_once_its_guard_moved(store: Store) -> None:
    lease = await store.create("/lease", b"a")
    for k in ("/gm/1", "/gm/2"):
        await store.create(k, b"v")
    await store.update("/lease", b"b", lease)
    results = await store.delete_many([Deletion("/gm/1"), Deletion("/gm/2")],
                                      guard=Guard("/lease", lease))
    assert all(isinstance(r, GuardFailed) for r in results)
    assert len((await store.list("/gm/")).items) == 2
    now = (await store.get("/lease")).mod_revision  # type: ignore[union-attr]
    results = await store.delete_many([Deletion("/gm/1"), Deletion("/gm/2")],
                                      guard=Guard("/lease", now))
    assert all(isinstance(r, int) for r in results)
    assert (await store.list("/gm/")).items == []
