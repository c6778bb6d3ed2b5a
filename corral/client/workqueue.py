"""A work queue of keys for reconcile loops, as client-go's:

    add(key) ──► queue ──get()──► processing ──done(key)──┐
                  ▲  (a key is in the queue at most once;   │
                  │   added while processing → queued again  │
                  │   after done)                            │
    add_after(key, delay) / add_rate_limited(key) ───────────┘
                  (per-key exponential back-off; forget(key) resets it)

Handlers enqueue keys ("namespace/name"); one worker at a time holds a key, so
a key is never reconciled by two workers at once. A queue with a ``name`` is
measured as client-go's are (corral/client/metrics.py): depth, adds, retries,
time waiting and time being worked on.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Hashable

from corral.client.metrics import WORKQUEUE_METRICS, WorkQueueMetrics


class ShutDown(Exception):
    """get() on a queue that was shut down: the worker should exit."""


class _Measure:
    """One named queue's children of the work-queue families."""

    def __init__(self, name: str, metrics: WorkQueueMetrics) -> None:
        self.depth = metrics.depth.labels(name)
        self.adds = metrics.adds.labels(name)
        self.retries = metrics.retries.labels(name)
        self.waited = metrics.queue_duration.labels(name)
        self.worked = metrics.work_duration.labels(name)
        self.queued_at: dict[Hashable, float] = {}
        self.started_at: dict[Hashable, float] = {}


class WorkQueue:
    def __init__(self, base_delay: float = 0.005, max_delay: float = 300.0,
                 name: str = "", metrics: WorkQueueMetrics = WORKQUEUE_METRICS) -> None:
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._wakeup = asyncio.Event()  # set whenever a key is queued or on shutdown
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._shutting_down = False
        self._measure = _Measure(name, metrics) if name else None

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: Hashable) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if self._measure is not None:
            self._measure.adds.inc()
        if key not in self._processing:
            self._enqueue(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        """Add the key after ``delay`` seconds; an earlier pending add_after wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        pending = self._timers.get(key)
        if pending is not None and pending.when() <= loop.time() + delay:
            return
        if pending is not None:
            pending.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def add_rate_limited(self, key: Hashable) -> None:
        """Retry a key that failed: after base·2^failures, capped at max_delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if self._measure is not None:
            self._measure.retries.inc()
        self.add_after(key, self.backoff_for(failures))

    def backoff_for(self, failures: int) -> float:
        return float(min(self._base_delay * (2 ** min(failures, 62)), self._max_delay))

    def forget(self, key: Hashable) -> None:
        """The key succeeded: its next failure starts the back-off from the base."""
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> Hashable:
        """The next key (wait for one); raises ShutDown once the queue is shut down."""
        while not self._queue and not self._shutting_down:
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._shutting_down:
            raise ShutDown()
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        measure = self._measure
        if measure is not None:
            now = time.monotonic()
            measure.depth.set(len(self._queue))
            measure.waited.observe(now - measure.queued_at.pop(key, now))
            measure.started_at[key] = now
        return key

    def done(self, key: Hashable) -> None:
        """The worker finished with key; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        measure = self._measure
        if measure is not None and key in measure.started_at:
            measure.worked.observe(time.monotonic() - measure.started_at.pop(key))
        if key in self._dirty:
            self._enqueue(key)

    def shutdown(self) -> None:
        """Wake every waiting get() with ShutDown; pending delayed adds are dropped."""
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._measure is not None:
            self._measure.depth.set(0)  # nothing will be worked on: a standby has no queue
        self._notify()

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _enqueue(self, key: Hashable) -> None:
        self._queue.append(key)
        if self._measure is not None:
            self._measure.queued_at[key] = time.monotonic()
            self._measure.depth.set(len(self._queue))
        self._notify()

    def _notify(self) -> None:
        self._wakeup.set()
