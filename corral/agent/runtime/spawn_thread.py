"""The executor's spawns, on a thread of their own.

``posix_spawn`` returns only once the child has exec'd: on a busy node the
parent waits milliseconds for the child to get a CPU. Spawning on the loop's
thread, the executor read no exit meanwhile, so a short task's end waited on
every spawn of the batches launched after it. The spawn releases the GIL
while it waits: on a thread of its own, the loop (which alone touches the
executor's state) reads exits and output meanwhile.

A spawn changes two things of its thread: the working directory (entered for
the spawn) and the real ids (a task user's). The thread un-shares its
filesystem context (``unshare(CLONE_FS)``: its own working directory) and
takes ids for itself alone (``task_spawn.thread_real_ids_of``). Where either is
not possible, batches run on the calling thread with the process's ids.

A batch goes to the thread as one item; each result comes back through
``done()`` on the loop's thread, and ``wake_fd`` (an eventfd the loop watches)
is readable while some wait there.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from corral.agent.runtime.task_spawn import (
    IdsSwitch,
    real_ids_of,
    thread_ids_known,
    thread_real_ids_of,
)

_CLONE_FS = 0x200
_libc = ctypes.PyDLL(None, use_errno=True)

Tag = TypeVar("Tag")
SpawnJob = Callable[[IdsSwitch], int]  # given how to lend a user's ids; returns a pid


class SpawnThread(Generic[Tag]):
    def __init__(self) -> None:
        self.wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.in_flight = 0  # submitted, not yet taken from done(): the loop's alone
        self._batches: queue.SimpleQueue[list[tuple[Tag, SpawnJob]] | None] = (
            queue.SimpleQueue())
        self._done: deque[tuple[Tag, int | Exception]] = deque()
        self._thread: threading.Thread | None = None
        self._inline = not thread_ids_known()

    def submit(self, batch: list[tuple[Tag, SpawnJob]]) -> None:
        """Spawn in order; each result is in ``done()`` once its spawn returned."""
        if not batch:
            return
        self.in_flight += len(batch)
        if self._thread is None and not self._inline:
            self._start()
        if self._inline:
            self._run(batch, real_ids_of)
        else:
            self._batches.put(batch)

    def done(self) -> list[tuple[Tag, int | Exception]]:
        """The spawns finished since the last call: (tag, pid or the exception)."""
        try:
            os.eventfd_read(self.wake_fd)
        except BlockingIOError:
            pass
        out = []
        while self._done:
            out.append(self._done.popleft())
        self.in_flight -= len(out)
        return out

    def close(self) -> None:
        if self._thread is not None:
            self._batches.put(None)
            self._thread.join(timeout=5)
        os.close(self.wake_fd)

    def _start(self) -> None:
        ready = threading.Event()
        own_cwd: list[bool] = []

        def serve() -> None:
            own_cwd.append(_libc.unshare(_CLONE_FS) == 0)
            ready.set()
            if own_cwd[0]:
                while (batch := self._batches.get()) is not None:
                    self._run(batch, thread_real_ids_of)

        self._thread = threading.Thread(target=serve, name="spawn", daemon=True)
        self._thread.start()
        ready.wait()
        if not own_cwd[0]:  # a chdir there would move the loop's thread too
            self._thread.join()
            self._inline = True

    def _run(self, batch: list[tuple[Tag, SpawnJob]], ids: IdsSwitch) -> None:
        for tag, job in batch:
            try:
                result: int | Exception = job(ids)
            # Every job comes back, or its task would never end: whatever the
            # spawn raised becomes the task's start error.
            except Exception as exc:  # noqa: BLE001
                result = exc
            self._done.append((tag, result))
            os.eventfd_write(self.wake_fd, 1)
