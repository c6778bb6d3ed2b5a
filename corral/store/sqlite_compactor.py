"""Compaction for SqliteStore: on request, and automatically to bound history.

A compaction runs in steps of COMPACT_STEP revisions, each its own transaction
on the writer thread, so write batches interleave with a long compaction instead
of waiting behind it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from corral.aiotasks import cancel_and_wait
from corral.store.history import DEFAULT_MAX_AGE, HistoryWindow
from corral.store.sqlite_writes import compact_step

log = logging.getLogger(__name__)

T = TypeVar("T")
COMPACT_STEP = 1000


class CompactionTarget(Protocol):
    """What the compactor needs of the store."""

    @property
    def revision(self) -> int: ...

    def on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> Awaitable[T]: ...


class Compactor:
    def __init__(self, target: CompactionTarget, *, history: int, interval: float,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self._target = target
        self._history = history  # revisions of history the automatic compactor keeps
        self._window = HistoryWindow(history, max_age)  # ... and seconds (history.py)
        self._interval = interval
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.compacted = 0

    def start(self, compacted: int) -> None:
        self.compacted = compacted
        if self._interval > 0 and self._history > 0:
            self._task = asyncio.create_task(self._run(), name="sqlite-compactor")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def compact(self, revision: int) -> None:
        """Forget history at and below ``revision``; a revision already compacted
        is a no-op. Raises ValueError for a revision not yet written."""
        if revision > self._target.revision:
            raise ValueError(f"cannot compact revision {revision}: the store is at "
                             f"{self._target.revision}")
        async with self._lock:
            start = self.compacted
            removed = 0
            while self.compacted < revision:
                upto = min(self.compacted + COMPACT_STEP, revision)
                removed += await self._target.on_writer(
                    functools.partial(compact_step, after=self.compacted, upto=upto))
                self.compacted = upto
        if revision > start:
            log.info("store compacted from=%d to=%d rows_removed=%d", start, revision, removed)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            target = self._window.target(self._target.revision)
            if target <= self.compacted:
                continue
            try:
                await self.compact(target)
            except Exception:
                log.exception("store automatic compaction failed revision=%d", target)
