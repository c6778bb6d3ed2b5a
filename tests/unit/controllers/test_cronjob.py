"""CronJob rules with a fixed clock: schedules, deadlines, concurrency policies,
the active list and history (Kubernetes' cronjob controller is the reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral import cronschedule
from corral.client.events import WARNING
from corral.controllers.cronjob import SCHEDULED_AT, job_name, plan
from corral.objects import Obj, rfc3339

CREATED = datetime(2024, 5, 1, 9, 58, 30, tzinfo=UTC)


def cronjob(schedule: str = "* * * * *", **spec: Any) -> Obj:
    status = spec.pop("status", {})
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default", "uid": "cj-uid",
                         "creationTimestamp": rfc3339(CREATED)},
            "spec": {"schedule": schedule, "concurrencyPolicy": "Allow",
                     "jobTemplate": {"metadata": {"labels": {"team": "a"}},
                                     "spec": {"template": {"spec": {"containers": [
                                         {"name": "c", "image": "x"}]}}}},
                     **spec},
            "status": status}


def job(name: str, outcome: str | None = None, started: str = "") -> Obj:
    conditions = [{"type": outcome, "status": "True"}] if outcome else []
    return {"metadata": {"name": name, "namespace": "default", "uid": name + "-uid",
                         "resourceVersion": "5"},
            "status": {"conditions": conditions, "startTime": started,
                       "completionTime": "2024-05-01T10:00:30Z" if outcome else None}}


def at(minute: int, second: int = 0) -> datetime:
    return datetime(2024, 5, 1, 10, minute, second, tzinfo=UTC)


def test_nothing_due_before_the_first_time_waits_for_it() -> None:
    result = plan(cronjob(), [], datetime(2024, 5, 1, 9, 58, 40, tzinfo=UTC))
    assert result.create is None
    assert result.requeue_after == pytest.approx(20.1)


def test_the_most_recent_time_starts_one_job_named_by_its_minute() -> None:
    result = plan(cronjob(), [], at(1, 10))  # 09:59 and 10:00 and 10:01 passed: one job
    assert result.create is not None
    assert result.create["metadata"]["name"] == job_name(cronjob(), at(1)) \
        == f"tick-{int(at(1).timestamp()) // 60}"
    assert result.create["metadata"]["annotations"][SCHEDULED_AT] == "2024-05-01T10:01:00Z"
    assert result.create["metadata"]["labels"]["team"] == "a"
    assert result.create["metadata"]["ownerReferences"][0]["uid"] == "cj-uid"
    assert result.status["lastScheduleTime"] == "2024-05-01T10:01:00Z"
    assert result.requeue_after == pytest.approx(50.1)


def test_a_time_already_started_is_not_started_again() -> None:
    cj = cronjob(status={"lastScheduleTime": "2024-05-01T10:01:00Z"})
    assert plan(cj, [], at(1, 40)).create is None
    assert plan(cj, [], at(2, 0)).create is not None


def test_starting_deadline_skips_a_time_too_late_to_start() -> None:
    cj = cronjob("0 * * * *", startingDeadlineSeconds=30,
                 status={"lastScheduleTime": "2024-05-01T09:00:00Z"})
    result = plan(cj, [], at(0, 45))
    assert result.create is None
    # now - deadline is 10:00:15, so 10:00 is not even looked at: nothing missed
    assert plan(cj, [], at(0, 20)).create is not None


def test_too_many_missed_times_warns_and_still_starts_the_latest() -> None:
    cj = cronjob(status={"lastScheduleTime": "2024-04-30T00:00:00Z"})
    result = plan(cj, [], at(5, 5))
    assert result.create is not None and result.status["lastScheduleTime"] == \
        "2024-05-01T10:05:00Z"
    assert any(reason == "TooManyMissedTimes" for _, reason, _ in result.events)


@pytest.mark.parametrize(("policy", "creates", "deletes"), [
    ("Allow", True, []), ("Forbid", False, []), ("Replace", True, ["tick-old"]),
])
def test_concurrency_policies(policy: str, creates: bool, deletes: list[str]) -> None:
    running = job("tick-old")
    cj = cronjob(concurrencyPolicy=policy, status={
        "lastScheduleTime": "2024-05-01T10:00:00Z",
        "active": [{"kind": "Job", "name": "tick-old", "namespace": "default"}]})
    result = plan(cj, [running], at(1, 1))
    assert (result.create is not None) is creates
    assert result.delete == deletes


def test_finished_jobs_leave_the_active_list_and_record_success() -> None:
    cj = cronjob(status={"lastScheduleTime": "2024-05-01T10:00:00Z",
                         "active": [{"name": "tick-a"}, {"name": "tick-gone"}]})
    result = plan(cj, [job("tick-a", "Complete"), job("tick-b")], at(0, 40))
    assert [r["name"] for r in result.status["active"]] == ["tick-b"]  # adopted, a dropped
    assert result.status["lastSuccessfulTime"] == "2024-05-01T10:00:30Z"
    reasons = [reason for _, reason, _ in result.events]
    assert "SawCompletedJob" in reasons and "MissingJob" in reasons


def test_a_job_made_by_hand_from_it_never_joins_the_active_list() -> None:
    by_hand = job("by-hand")
    by_hand["metadata"]["annotations"] = {"cronjob.kubernetes.io/instantiate": "manual"}
    cj = cronjob(concurrencyPolicy="Forbid",
                 status={"lastScheduleTime": "2024-05-01T10:00:00Z"})
    result = plan(cj, [by_hand], at(1, 1))
    assert "active" not in result.status
    assert result.create is not None  # Forbid is not held back by it
    assert (WARNING, "UnexpectedJob",
            "Saw a job that the controller did not create or forgot: by-hand") in result.events


def test_history_limits_delete_the_oldest_finished_jobs() -> None:
    jobs = [job(f"ok-{i}", "Complete", f"2024-05-01T0{i}:00:00Z") for i in range(5)]
    jobs += [job(f"bad-{i}", "Failed", f"2024-05-01T0{i}:00:00Z") for i in range(3)]
    cj = cronjob(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1,
                 status={"lastScheduleTime": "2024-05-01T10:00:00Z"})
    result = plan(cj, jobs, at(0, 30))
    assert result.delete == ["ok-0", "ok-1", "ok-2", "bad-0", "bad-1"]


def test_suspended_starts_nothing() -> None:
    assert plan(cronjob(suspend=True), [], at(5)).create is None


def test_time_zone_shifts_the_schedule() -> None:
    # 10:00 in Tokyo is 01:00 UTC
    cj = cronjob("0 10 * * *", timeZone="Asia/Tokyo",
                 status={"lastScheduleTime": "2024-04-30T01:00:00Z"})
    result = plan(cj, [], datetime(2024, 5, 1, 1, 0, 30, tzinfo=UTC))
    assert result.status["lastScheduleTime"] == "2024-05-01T01:00:00Z"


@pytest.mark.parametrize(("schedule", "zone", "words"), [
    ("x", None, "expected exactly 5 fields"),
    ("* * * * * *", None, "expected exactly 5 fields"),
    ("61 * * * *", None, "unparseable schedule"),
    ("@fortnightly", None, "unrecognized descriptor"),
    ("TZ=UTC * * * * *", None, "use timeZone field instead"),
    ("* * * * *", "Mars/Olympus", "unknown time zone"),
])
def test_bad_schedules(schedule: str, zone: str | None, words: str) -> None:
    with pytest.raises(cronschedule.BadSchedule, match=words):
        cronschedule.parse(schedule, zone)


def test_macros() -> None:
    hourly = cronschedule.parse("@hourly")
    assert hourly.next_after(at(0, 1)) == at(0) + timedelta(hours=1)
