"""Job arithmetic: indexes, how many pods to run, verdicts, back-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from corral.controllers.job_status import (
    JobSpecView,
    failure_backoff,
    pending_indexes,
    verdict,
    want_active,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def spec(completions: int | None = 5, parallelism: int = 2, backoff: int = 3,
         indexed: bool = False, deadline: int | None = None) -> JobSpecView:
    return JobSpecView(completions, parallelism, backoff, indexed, deadline)


def test_want_active() -> None:
    assert want_active(spec(5, 2), succeeded=0, active=0) == 2
    assert want_active(spec(5, 2), succeeded=4, active=0) == 1
    assert want_active(spec(5, 2), succeeded=5, active=0) == 0
    assert want_active(spec(None, 3), succeeded=0, active=0) == 3  # work queue
    assert want_active(spec(None, 3), succeeded=1, active=2) == 0


def test_pending_indexes_skip_completed_and_running() -> None:
    s = spec(6, 3, indexed=True)
    assert pending_indexes(s, {0, 2}, {1}, room=2) == [3, 4]
    assert pending_indexes(s, {0, 1, 2, 3, 4, 5}, set(), room=3) == []


def test_verdicts() -> None:
    assert verdict(spec(3), 3, 0, set(), 0, NOW, NOW).type == "Complete"  # type: ignore[union-attr]
    assert verdict(spec(3), 2, 0, set(), 1, NOW, NOW) is None
    failed = verdict(spec(3, backoff=2), 0, 3, set(), 0, NOW, NOW)
    assert failed is not None and failed.reason == "BackoffLimitExceeded"
    assert verdict(spec(3, backoff=2), 0, 2, set(), 0, NOW, NOW) is None
    late = verdict(spec(3, deadline=10), 0, 0, set(), 1, NOW - timedelta(seconds=11), NOW)
    assert late is not None and late.reason == "DeadlineExceeded"
    indexed = spec(3, indexed=True)
    assert verdict(indexed, 5, 0, {0, 1}, 0, NOW, NOW) is None  # duplicates do not count
    assert verdict(indexed, 3, 0, {0, 1, 2}, 0, NOW, NOW) is not None
    assert verdict(spec(None), 1, 0, set(), 0, NOW, NOW) is not None  # work queue done


def test_failure_backoff_doubles_and_caps() -> None:
    assert [failure_backoff(n, 1.0, 10.0) for n in range(6)] == [0, 1, 2, 4, 8, 10]
