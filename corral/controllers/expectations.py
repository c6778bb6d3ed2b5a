"""Expectations, as Kubernetes' ControllerExpectations: a controller that just
asked for N creations (or deletions) does not act on its key again until its
informer has seen them, so a ReplicaSet never over-creates before its cache
shows its own new pods.

    expect_creations(key, n) ─► adds = n      creation_observed(key) ─► adds -= 1
    expect_deletions(key, uids) ─► dels = uids deletion_observed(key, uid) ─► dels -= uid
    satisfied(key): nothing pending, or the record is older than ``ttl`` (a lost
    watch event must not wedge the controller forever)

A failed create/delete lowers the expectation at once (the event never comes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

EXPECTATIONS_TTL = 300.0  # Kubernetes' ExpectationsTimeout


@dataclass
class _Record:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = 0.0


class Expectations:
    def __init__(self, ttl: float = EXPECTATIONS_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._records: dict[str, _Record] = {}

    def expect_creations(self, key: str, count: int) -> None:
        record = self._records.setdefault(key, _Record())
        record.adds += count
        record.stamp = self._clock()

    def expect_deletions(self, key: str, uids: list[str]) -> None:
        record = self._records.setdefault(key, _Record())
        record.deletes.update(uids)
        record.stamp = self._clock()

    def creation_observed(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None and record.adds > 0:
            record.adds -= 1

    def deletion_observed(self, key: str, uid: str) -> None:
        record = self._records.get(key)
        if record is not None:
            record.deletes.discard(uid)

    def satisfied(self, key: str) -> bool:
        record = self._records.get(key)
        if record is None:
            return True
        if record.adds <= 0 and not record.deletes:
            return True
        return self._clock() - record.stamp > self.ttl

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected."""
        record = self._records.get(key)
        return (max(record.adds, 0), len(record.deletes)) if record else (0, 0)

    def forget(self, key: str) -> None:
        self._records.pop(key, None)
