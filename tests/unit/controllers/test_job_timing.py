"""The Job controller's timing rules on a fake clock: activeDeadlineSeconds and
the back-off before failed pods are replaced."""

from __future__ import annotations

from corral.client.clock import FakeClock
from corral.controllers.job_status import FailureBackoff, JobSpecView, deadline_left, verdict


def job(deadline: int | None = 30, backoff_limit: int = 6) -> JobSpecView:
    return JobSpecView(completions=3, parallelism=1, backoff_limit=backoff_limit,
                       indexed=False, active_deadline=deadline)


def test_active_deadline_fails_the_job_exactly_when_it_runs_out() -> None:
    clock = FakeClock()
    started = clock.now()
    clock.advance(29.5)
    assert verdict(job(), 1, 0, set(), 1, started, clock.now()) is None
    assert deadline_left(job(), started, clock.now()) == 0.5  # when to look again
    clock.advance(0.5)
    outcome = verdict(job(), 1, 0, set(), 1, started, clock.now())
    assert outcome is not None
    assert (outcome.type, outcome.reason) == ("Failed", "DeadlineExceeded")
    assert outcome.message == "Job was active longer than specified deadline"


def test_no_deadline_or_not_started_never_expires() -> None:
    clock = FakeClock()
    clock.advance(10**6)
    assert deadline_left(job(deadline=None), clock.now(), clock.now()) is None
    assert deadline_left(job(), None, clock.now()) is None
    assert verdict(job(deadline=None), 0, 0, set(), 1, FakeClock().now(), clock.now()) is None


def test_completion_wins_over_an_expired_deadline() -> None:
    clock = FakeClock()
    started = clock.now()
    clock.advance(60)
    outcome = verdict(job(), 3, 0, set(), 0, started, clock.now())
    assert outcome is not None and outcome.type == "Complete"


def test_backoff_doubles_per_failure_from_when_the_failure_was_seen() -> None:
    clock = FakeClock()
    backoff = FailureBackoff(clock, base=1.0, cap=60.0)
    assert backoff.left("ns/j", 0) == 0.0  # nothing failed: create at once
    assert backoff.left("ns/j", 1) == 1.0
    clock.advance(0.75)
    assert backoff.left("ns/j", 1) == 0.25  # the same failure: the wait runs on
    clock.advance(0.25)
    assert backoff.left("ns/j", 1) <= 0
    clock.advance(100)
    assert backoff.left("ns/j", 2) == 2.0  # a new failure: counted from now
    assert backoff.left("ns/j", 4) == 8.0
    assert backoff.left("ns/j", 20) == 60.0  # capped


def test_backoff_is_per_job_and_forgotten_with_it() -> None:
    clock = FakeClock()
    backoff = FailureBackoff(clock, base=1.0, cap=60.0)
    assert backoff.left("ns/a", 3) == 4.0
    clock.advance(3)
    assert backoff.left("ns/b", 1) == 1.0
    assert backoff.left("ns/a", 3) == 1.0
    backoff.forget("ns/a")
    assert backoff.left("ns/a", 3) == 4.0  # a recreated Job starts afresh


def test_backoff_limit_fails_the_job_on_the_failure_past_it() -> None:
    now = FakeClock().now()
    assert verdict(job(backoff_limit=2), 0, 2, set(), 0, now, now) is None
    outcome = verdict(job(backoff_limit=2), 0, 3, set(), 0, now, now)
    assert outcome is not None and outcome.reason == "BackoffLimitExceeded"
