"""Hearing a container instance end without polling its status file.

The shim writes the EXITED status and then exits, so its pid ending means the
status is final. The shim is not our child (it detached), so ``waitpid`` cannot
see it; a pidfd (Linux ≥ 5.3) becomes readable when any process exits, and the
event loop watches it like a socket. Where pidfds are missing the pod worker's
periodic re-sync still notices the exit, only later.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable


class ExitWatch:
    """Calls ``on_exit`` once when ``pid`` ends (at once if it already has)."""

    def __init__(self, pid: int, on_exit: Callable[[], None]) -> None:
        self.pid = pid
        self._on_exit = on_exit
        self._fd: int | None = None
        self._loop = asyncio.get_running_loop()
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._loop.call_soon(self._fire)
            return
        except (OSError, AttributeError):
            return  # no pidfd here: the periodic re-sync covers it
        self._loop.add_reader(self._fd, self._fire)

    def _fire(self) -> None:
        self.close()
        self._on_exit()

    def close(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
