"""How much history automatic compaction keeps: the last ``history`` revisions,
and nothing older than ``max_age`` seconds.

The count alone keeps an overwritten or deleted value forever on a quiet
cluster (10,000 revisions may take days); a Secret's old value, even sealed,
should not outlive its replacement by long. So each tick also remembers the
revision it saw, and compacts up to the newest revision seen ``max_age`` ago —
kube-apiserver's own scheme (every 5 minutes it compacts to the revision of
the previous tick). A value replaced at revision R is gone from history within
``max_age`` plus one interval after R.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

DEFAULT_MAX_AGE = 300.0  # seconds: kube-apiserver's --etcd-compaction-interval


class HistoryWindow:
    def __init__(self, history: int, max_age: float = DEFAULT_MAX_AGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.history = history
        self.max_age = max_age  # 0: by count only
        self._clock = clock
        self._seen: deque[tuple[float, int]] = deque()  # (when, revision), oldest first

    def target(self, current: int) -> int:
        """The revision to compact to now, at ``current`` (call once per tick)."""
        by_count = current - self.history
        if self.max_age <= 0:
            return by_count
        now = self._clock()
        self._seen.append((now, current))
        by_age = 0
        while self._seen and now - self._seen[0][0] >= self.max_age:
            by_age = self._seen.popleft()[1]
        return max(by_count, by_age)
