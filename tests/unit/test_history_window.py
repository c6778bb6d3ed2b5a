"""Automatic compaction's window: a count of revisions and an age (fake clock)."""

from __future__ import annotations

from corral.store.history import HistoryWindow


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_count_or_the_age_whichever_keeps_less() -> None:
    clock = Clock()
    window = HistoryWindow(history=100, max_age=300, clock=clock)
    assert window.target(10) <= 0  # young and short: nothing to compact
    clock.now = 299
    assert window.target(20) <= 0
    clock.now = 300  # what was current 300 s ago may go
    assert window.target(25) == 10
    clock.now = 650
    assert window.target(30) == 25  # the newest revision seen at least 300 s ago
    clock.now = 660
    assert window.target(500) == 400  # a busy store: the count keeps less


def test_age_zero_is_the_count_alone() -> None:
    window = HistoryWindow(history=5, max_age=0, clock=Clock())
    assert window.target(3) == -2 and window.target(50) == 45
