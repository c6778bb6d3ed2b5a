"""A node's task-array bookkeeping: claiming ahead, launching, exits, retries."""

from __future__ import annotations

from corral.agent.task_array import ClaimPace, TaskArray
from corral.indexset import IndexSet

FLUSH = 0.2


def run_flushes(pace: ClaimPace, per_second: float, flushes: int) -> None:
    completed, now = 0, 100.0
    for _ in range(flushes):
        pace.observe(completed, now)
        completed += int(per_second * FLUSH)
        now += FLUSH


def test_pace_claims_about_a_second_of_work_at_the_completion_rate() -> None:
    pace = ClaimPace(seconds=1.0)
    run_flushes(pace, per_second=500, flushes=20)
    assert 450 <= pace.ahead(16) <= 500


def test_pace_never_claims_less_than_the_floor() -> None:
    pace = ClaimPace(seconds=1.0)
    assert pace.ahead(16) == 16  # nothing observed yet
    run_flushes(pace, per_second=5, flushes=20)
    assert pace.ahead(16) == 16


def test_pace_follows_a_slowdown() -> None:
    pace = ClaimPace(seconds=1.0)
    run_flushes(pace, per_second=1000, flushes=20)
    fast = pace.ahead(16)
    completed, now = 4000, 200.0
    pace.observe(completed, now)
    for _ in range(20):
        now += FLUSH
        completed += 10
        pace.observe(completed, now)
    assert pace.ahead(16) < fast // 10


def array_of(ranges: str, slots: int = 2, limit: int | None = 1) -> TaskArray:
    array = TaskArray(slots, limit)
    array.assigned = IndexSet.parse(ranges)
    return array


def test_only_written_claims_are_launched() -> None:
    array = array_of("0-9")
    assert array.claim_ahead(4)
    assert array.to_launch(window=4, now=0.0) == []  # claimed in memory, not on record
    array.commit_claims(array.claiming.copy())
    assert array.to_launch(window=4, now=0.0) == [0, 1, 2, 3]
    assert array.claim_ahead(4)  # the next four, ahead of what was launched
    assert array.claiming.format() == "4-7"
    assert array.claim_ahead(4)  # still to be written: nothing more is claimed
    assert array.claiming.format() == "4-7"


def test_exits_complete_or_retry_until_the_per_index_limit() -> None:
    array = array_of("0-1")
    array.claim_ahead(2)
    array.commit_claims(array.claiming.copy())
    array.to_launch(window=2, now=0.0)
    array.exited(0, 0, "", now=0.0)
    array.exited(1, 3, "Error", now=0.0)
    assert array.completed.format() == "0"
    assert array.to_launch(window=2, now=0.1) == []  # backing off
    assert array.to_launch(window=2, now=10.0) == [1]
    array.exited(1, 3, "Error", now=10.0)
    assert array.failed_final.format() == "1"
    assert array.finished().format() == "0-1"
