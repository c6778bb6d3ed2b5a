"""Watch fan-out: one publisher, many subscribers, each with a bounded buffer.

A subscriber that lets its buffer overflow is dropped on the spot (kine's "slow
consumer, drop"): publishing never waits for a reader, so one stalled watcher
cannot slow writers or the other watchers. The dropped subscriber's reader is
told so and re-watches from the last revision it saw.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Iterable

from corral.store.base import Event


class SubState(enum.Enum):
    LIVE = "live"  # receiving events
    DROPPED = "dropped"  # buffer overflowed; its reader must re-watch
    CLOSED = "closed"  # the broadcaster shut down (the store closed)
    UNSUBSCRIBED = "unsubscribed"  # the reader let go of it


class Subscription:
    """The buffer between the publisher and one watcher."""

    def __init__(self, prefix: str, capacity: int) -> None:
        self.prefix = prefix
        self.capacity = capacity
        self.state = SubState.LIVE
        self._buffer: deque[Event] = deque()
        self._ready = asyncio.Event()

    def offer(self, events: list[Event]) -> bool:
        """Append events; False (and nothing appended) when they do not fit."""
        if len(self._buffer) + len(events) > self.capacity:
            return False
        self._buffer.extend(events)
        self._ready.set()
        return True

    def end(self, state: SubState) -> None:
        self.state = state
        self._buffer.clear()  # a dropped watcher re-reads from the store; free memory now
        self._ready.set()

    async def take(self) -> list[Event]:
        """Everything buffered, waiting for at least one event. Returns [] once the
        subscription has ended (look at ``state`` to learn why)."""
        while not self._buffer and self.state is SubState.LIVE:
            self._ready.clear()
            await self._ready.wait()
        events = list(self._buffer)
        self._buffer.clear()
        return events


class Broadcaster:
    """Delivers each published batch to every live subscriber whose prefix matches."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, set[Subscription]] = {}
        self._closed = False

    def subscribe(self, prefix: str, capacity: int) -> Subscription:
        sub = Subscription(prefix, capacity)
        if self._closed:
            sub.end(SubState.CLOSED)
        else:
            self._by_prefix.setdefault(prefix, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub.state is SubState.LIVE:
            sub.end(SubState.UNSUBSCRIBED)
        self._forget(sub)

    def publish(self, events: list[Event]) -> None:
        # Group by prefix so each event's key is tested once per distinct prefix,
        # not once per watcher: many watchers usually share a few prefixes.
        for prefix, subs in list(self._by_prefix.items()):
            matching = _matching(events, prefix)
            if not matching:
                continue
            for sub in list(subs):
                if not sub.offer(matching):
                    sub.end(SubState.DROPPED)
                    self._forget(sub)

    def drop_all(self) -> None:
        """End every subscription as dropped (each reader re-watches); new ones
        may still subscribe."""
        for subs in self._by_prefix.values():
            for sub in subs:
                sub.end(SubState.DROPPED)
        self._by_prefix.clear()

    def close(self) -> None:
        self._closed = True
        for subs in self._by_prefix.values():
            for sub in subs:
                sub.end(SubState.CLOSED)
        self._by_prefix.clear()

    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._by_prefix.values())

    def _forget(self, sub: Subscription) -> None:
        subs = self._by_prefix.get(sub.prefix)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._by_prefix[sub.prefix]


def _matching(events: Iterable[Event], prefix: str) -> list[Event]:
    if not prefix:
        return list(events)
    return [ev for ev in events if ev.kv.key.startswith(prefix)]
