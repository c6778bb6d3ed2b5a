"""The scheduling queue: pending pods by priority, then creation time.

    add(key) ──► active heap  (-priority, creationTimestamp, arrival)
                    │ pop()
                    ▼
                 one attempt ── fits ──► bound (the key leaves the queue)
                    │ fits nowhere
                    ▼
    park(key) ──► parked: back to active after 1 s, 2 s, 4 s … 10 s (per pod),
                  or at once on move_all_to_active() (a node joined or changed,
                  a pod went away: something may fit now)

Keys are "namespace/name"; the loop reads the pod itself from its informer when
it pops the key, so the queue never holds a stale copy.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass

INITIAL_BACKOFF = 1.0  # kube-scheduler's podInitialBackoffSeconds
MAX_BACKOFF = 10.0  # kube-scheduler's podMaxBackoffSeconds


class QueueClosed(Exception):
    """pop() on a closed queue: the scheduling loop should end."""


@dataclass
class _Entry:
    priority: int
    created: str  # RFC 3339 sorts as text
    attempts: int = 0


class SchedulingQueue:
    def __init__(self, initial_backoff: float = INITIAL_BACKOFF,
                 max_backoff: float = MAX_BACKOFF) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[int, str, int, str]] = []
        self._active: set[str] = set()
        self._parked: dict[str, asyncio.TimerHandle] = {}
        self._arrival = itertools.count()
        self._wakeup = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._active)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    @property
    def parked(self) -> int:
        return len(self._parked)

    def add(self, key: str, priority: int, created: str) -> None:
        """A new or changed pending pod: try it now."""
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(priority, created)
        else:
            entry.priority, entry.created = priority, created
        self._activate(key)

    def park(self, key: str) -> None:
        """The attempt failed: retry after this pod's back-off, or on a cluster change."""
        entry = self._entries.get(key)
        if entry is None or self._closed:
            return
        entry.attempts += 1
        timer = self._parked.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._parked[key] = asyncio.get_running_loop().call_later(
            self.backoff(entry.attempts), self._activate, key)

    def backoff(self, attempts: int) -> float:
        return float(min(self.initial_backoff * 2 ** max(attempts - 1, 0), self.max_backoff))

    def requeue(self, key: str) -> None:
        """Try a known pod again now (its placement was lost to a race, not refused)."""
        if key in self._entries:
            self._activate(key)

    def move_all_to_active(self) -> None:
        for key in list(self._parked):
            self._activate(key)

    def remove(self, key: str) -> None:
        """The pod was bound or deleted."""
        self._entries.pop(key, None)
        self._active.discard(key)  # its heap item is skipped when it surfaces
        timer = self._parked.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def pop(self) -> str:
        while True:
            while self._heap:
                key = heapq.heappop(self._heap)[3]
                if key in self._active:
                    self._active.discard(key)
                    return key
            if self._closed:
                raise QueueClosed()
            self._wakeup.clear()
            await self._wakeup.wait()
            if self._closed:
                raise QueueClosed()

    def close(self) -> None:
        self._closed = True
        for timer in self._parked.values():
            timer.cancel()
        self._parked.clear()
        self._wakeup.set()

    def _activate(self, key: str) -> None:
        timer = self._parked.pop(key, None)
        if timer is not None:
            timer.cancel()
        entry = self._entries.get(key)
        if entry is None or key in self._active or self._closed:
            return
        self._active.add(key)
        heapq.heappush(self._heap, (-entry.priority, entry.created, next(self._arrival), key))
        self._wakeup.set()
