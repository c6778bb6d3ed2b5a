"""The watch iterator: replay history from the log, then follow live events.

    watch(prefix, N) ──subscribe──▶ live events buffer up in the Subscription
         │
         ├─ replay: pages of log rows with id > N (then > last yielded)
         │          until a short page
         └─ live:   events from the Subscription, skipping revision <= last yielded

Subscribing before the first replay query is what makes the hand-over gap-free:
an event committed after the query is published after the subscription existed,
and one seen by both is dropped by the revision check.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from corral.store.base import Event
from corral.store.broadcast import Broadcaster, Subscription, SubState
from corral.store.errors import StoreUnavailable, WatcherTooSlow

# (prefix, after, limit, first page?) -> events; runs the query off the event loop.
FetchHistory = Callable[[str, int, int, bool], Awaitable[list[Event]]]

REPLAY_PAGE = 1000


class Watcher(AsyncIterator[Event]):
    """One watch. Subscribes when created, so ``after_revision=0`` means the
    moment ``watch()`` was called, not the first ``__anext__``. It unsubscribes
    on ``aclose()``, when an ``__anext__`` is cancelled (the consuming task is
    going away), and when it is garbage-collected unclosed."""

    def __init__(self, broadcaster: Broadcaster, fetch: FetchHistory, prefix: str,
                 after_revision: int, now_revision: int, capacity: int) -> None:
        self._broadcaster = broadcaster
        self._fetch = fetch
        self._prefix = prefix
        self._sub: Subscription = broadcaster.subscribe(prefix, capacity)
        weakref.finalize(self, broadcaster.unsubscribe, self._sub)
        self._replaying = after_revision > 0
        self._first_page = True
        self._last = after_revision if after_revision > 0 else now_revision
        self._pending: deque[Event] = deque()

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> Event:
        try:
            while not self._pending:
                self._raise_if_ended()
                if self._replaying:
                    await self._replay_page()
                else:
                    await self._take_live()
        except asyncio.CancelledError:
            await self.aclose()
            raise
        event = self._pending.popleft()
        self._last = event.revision
        return event

    async def aclose(self) -> None:
        self._broadcaster.unsubscribe(self._sub)
        self._pending.clear()

    async def _replay_page(self) -> None:
        try:
            events = await self._fetch(self._prefix, self._last, REPLAY_PAGE, self._first_page)
        except Exception:
            await self.aclose()
            raise
        self._first_page = False
        self._pending.extend(events)
        if len(events) < REPLAY_PAGE:
            self._replaying = False

    async def _take_live(self) -> None:
        events = await self._sub.take()
        last = self._last
        self._pending.extend(ev for ev in events if ev.revision > last)

    def _raise_if_ended(self) -> None:
        state = self._sub.state
        if state is SubState.DROPPED:
            raise WatcherTooSlow(self._last)
        if state is SubState.CLOSED:
            raise StoreUnavailable("store closed")
        if state is SubState.UNSUBSCRIBED:
            raise StopAsyncIteration
