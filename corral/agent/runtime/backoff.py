"""CrashLoopBackOff: how long a crashed container waits before its next start.

Kubernetes' rule: after each exit the delay doubles from 10 s up to a 5 min cap
(10, 20, 40, 80, 160, 300, 300, ...); a container that ran for 10 min before it
exited starts the count again. The pod worker asks ``remaining(key)`` and reports
the container as waiting with reason CrashLoopBackOff while it is positive.

The clock is injectable so tests step through minutes in microseconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class _Entry:
    delay: float  # the delay handed out after the last exit
    restart_at: float  # clock time the next start is allowed


class CrashLoopBackOff:
    """Back-off per key (the agent uses "<pod uid>/<container name>")."""

    def __init__(
        self, clock: Clock | None = None, initial: float = 10.0, cap: float = 300.0,
        reset_after: float = 600.0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.initial = initial
        self.cap = cap
        self.reset_after = reset_after
        self._entries: dict[str, _Entry] = {}

    def record_exit(self, key: str, ran_for: float) -> float:
        """Note an exit after ``ran_for`` seconds of running; return the delay
        before the next start is allowed."""
        entry = self._entries.get(key)
        if entry is None or ran_for >= self.reset_after:
            delay = self.initial
        else:
            delay = min(entry.delay * 2, self.cap)
        self._entries[key] = _Entry(delay, self.clock.monotonic() + delay)
        return delay

    def remaining(self, key: str) -> float:
        """Seconds until the next start is allowed (0 when it is)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.restart_at - self.clock.monotonic())

    def in_backoff(self, key: str) -> bool:
        return self.remaining(key) > 0

    def current_delay(self, key: str) -> float | None:
        entry = self._entries.get(key)
        return entry.delay if entry else None

    def forget(self, key: str) -> None:
        """Drop the key's history (its pod is gone)."""
        self._entries.pop(key, None)
