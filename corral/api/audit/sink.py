"""The audit log file: events go through a bounded queue to one writer task,
which appends them as JSON lines from a thread, rotating the file by size.

    request done ─► AuditLog.emit(event) ─► queue (QUEUE_SIZE events)
                                               │ writer task: takes what is queued
                                               ▼ (up to BATCH), serializes it
                                  thread: append lines; past max_bytes the file
                                  becomes <name>-<UTC time>.<ext> (a backup), a new
                                  one starts, backups beyond max_backups are removed

The event loop never waits on the disk. When the queue is full (the disk is slow
or gone, or a flood of requests), ``emit`` waits up to FULL_WAIT seconds for room:
the request whose event it is has been answered already, but its task (and the
next request on its connection) waits — back-pressure on whoever floods. An
event that finds no room even then is dropped: counted in
apiserver_audit_error_total{plugin="log"} and logged (once per DROP_LOG_EVERY s),
never silently. Stopping the server writes what is queued before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from corral.aiotasks import cancel_and_wait
from corral.api.metrics import API_METRICS

log = logging.getLogger("corral.api.audit")

QUEUE_SIZE = 10000  # kube-apiserver's --audit-log-batch-buffer-size default
BATCH = 1000
FULL_WAIT = 1.0
DROP_LOG_EVERY = 10.0
MEGABYTE = 1024 * 1024


class RotatingFile:
    """Appends lines to ``path`` (0600); rotates past ``max_bytes`` (0: never),
    keeping the newest ``max_backups`` backups (0: all). Used from one thread."""

    def __init__(self, path: Path, max_bytes: int, max_backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self._out = self._open()

    def _open(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "ab")

    def write(self, lines: list[bytes]) -> None:
        for line in lines:
            size = self._out.tell()
            if self.max_bytes and size and size + len(line) > self.max_bytes:
                self._rotate()
            self._out.write(line)
        self._out.flush()

    def _rotate(self) -> None:
        self._out.close()
        # lumberjack's (kube-apiserver's) backup name, to the microsecond:
        # audit-2006-01-02T15-04-05.000000.log; names sort as the rotations happened
        when = datetime.now(UTC)
        while (backup := self._backup_name(when)).exists():
            when += timedelta(microseconds=1)  # two rotations within a microsecond
        os.replace(self.path, backup)
        self._out = self._open()
        if self.max_backups:
            for old in self.backups()[:-self.max_backups]:
                old.unlink(missing_ok=True)

    def _backup_name(self, when: datetime) -> Path:
        stamp = when.strftime("%Y-%m-%dT%H-%M-%S.%f")
        return self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")

    def backups(self) -> list[Path]:
        """Oldest first (the names sort by time)."""
        pattern = f"{self.path.stem}-????-??-??T*{self.path.suffix}"
        return sorted(self.path.parent.glob(pattern))

    def close(self) -> None:
        self._out.close()


class AuditLog:
    def __init__(self, path: Path, *, max_megabytes: float = 100,
                 max_backups: int = 10, queue_size: int = QUEUE_SIZE) -> None:
        self.file = RotatingFile(path, int(max_megabytes * MEGABYTE), max_backups)
        # None: the end (close)
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._last_drop_log = 0.0
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_forever(), name="audit-writer")

    async def emit(self, event: dict[str, Any]) -> None:
        API_METRICS.audit_events.inc()
        try:
            self._queue.put_nowait(event)
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self._queue.put(event), FULL_WAIT)
        except TimeoutError:
            self._drop()

    def _drop(self) -> None:
        self.dropped += 1
        API_METRICS.audit_errors.labels("log").inc()
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY:
            self._last_drop_log = now
            log.error("audit events dropped: the queue is full dropped_total=%d path=%s",
                      self.dropped, self.file.path)

    async def _write_forever(self) -> None:
        done = False
        while not done:
            batch = []
            item = await self._queue.get()
            while True:
                if item is None:
                    done = True
                    break
                batch.append(item)
                if len(batch) >= BATCH or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        lines = [orjson.dumps(e) + b"\n" for e in batch]
        try:
            await asyncio.to_thread(self.file.write, lines)
        except OSError as err:
            API_METRICS.audit_errors.labels("log").inc(len(batch))
            log.error("audit events not written events=%d path=%s error=%s", len(batch),
                      self.file.path, err)

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._task is not None:
            await self._queue.put(None)
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 10.0)
            except TimeoutError:  # a disk that hangs: give up on the rest
                await cancel_and_wait(self._task)
            self._task = None
        await asyncio.to_thread(self.file.close)
