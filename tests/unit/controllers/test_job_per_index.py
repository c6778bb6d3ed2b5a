"""Backoff limit per index: the pure rules (job_per_index.py, job_status.index_verdict)."""

from __future__ import annotations

from datetime import UTC, datetime

from corral.controllers.job_per_index import (
    INDEX_FAILURE_COUNT,
    INDEX_IGNORED_FAILURE_COUNT,
    IndexFailures,
    ends_index,
    held,
    replacement_failures,
)
from corral.controllers.job_status import JobSpecView, index_verdict, verdict
from corral.indexset import IndexSet
from corral.objects import Obj

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def job(limit: int = 1, rules: list[Obj] | None = None) -> Obj:
    spec: Obj = {"completionMode": "Indexed", "completions": 4, "backoffLimitPerIndex": limit}
    if rules is not None:
        spec["podFailurePolicy"] = {"rules": rules}
    return {"metadata": {"name": "j", "namespace": "default"}, "spec": spec}


def pod(uid: str, index: int, phase: str, counted: int = 0, ignored: int = 0,
        exit_code: int = 1, created: str = "2025-01-01T00:00:00Z") -> Obj:
    notes = {"batch.kubernetes.io/job-completion-index": str(index),
             INDEX_FAILURE_COUNT: str(counted)}
    if ignored:
        notes[INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
    state = {"terminated": {"exitCode": exit_code}} if phase == "Failed" else {"running": {}}
    return {"metadata": {"name": f"j-{index}-{uid}", "namespace": "default", "uid": uid,
                         "annotations": notes, "creationTimestamp": created},
            "status": {"phase": phase,
                       "containerStatuses": [{"name": "main", "state": state}]}}


def rule(action: str, code: int) -> Obj:
    return {"action": action, "onExitCodes": {"operator": "In", "values": [code]}}


def test_an_index_fails_past_its_limit_or_by_a_fail_index_rule() -> None:
    assert not ends_index(job(1), pod("a", 1, "Failed", counted=0), 1)  # 1st failure: retry
    assert ends_index(job(1), pod("b", 1, "Failed", counted=1), 1)  # 2nd failure: done
    assert ends_index(job(0), pod("c", 1, "Failed"), 0)
    fail_index = job(5, [rule("FailIndex", 42)])
    assert ends_index(fail_index, pod("d", 1, "Failed", exit_code=42), 5)
    assert not ends_index(fail_index, pod("e", 1, "Failed", exit_code=3), 5)
    ignore = job(0, [rule("Ignore", 7)])
    assert not ends_index(ignore, pod("f", 1, "Failed", exit_code=7), 0)


def test_the_replacement_carries_the_counts_of_the_newest_failure() -> None:
    pods = [pod("a", 1, "Failed", counted=0), pod("b", 1, "Failed", counted=1),
            pod("c", 2, "Failed", counted=0, exit_code=7), pod("d", 3, "Running")]
    counts = replacement_failures(job(5, [rule("Ignore", 7)]), pods)
    assert counts == {1: IndexFailures(2, 0), 2: IndexFailures(0, 1)}
    assert counts[2].annotations() == {INDEX_FAILURE_COUNT: "0",
                                       INDEX_IGNORED_FAILURE_COUNT: "1"}
    assert IndexFailures.of(pod("x", 0, "Failed", counted=-3)).counted == 0  # unreadable: 0


def test_held_pods_are_the_newest_failures_of_indexes_still_to_run() -> None:
    pods = [pod("a", 0, "Failed"),  # index 0: retried, its replacement not made yet → held
            pod("b", 1, "Failed"), pod("c", 1, "Running"),  # replacement running → released
            pod("d", 2, "Failed", counted=1),  # past the limit: the index fails, not held
            pod("e", 3, "Failed")]  # index 3 already completed
    assert held(job(1), pods, 1, IndexSet.parse("3"), IndexSet()) == {"a"}
    assert held(job(1), pods, 1, IndexSet.parse("3"), IndexSet.parse("0")) == set()


def test_index_verdicts() -> None:
    none, one, two = IndexSet(), IndexSet.parse("1"), IndexSet.parse("1-2")
    assert index_verdict(4, None, IndexSet.parse("0,2"), one) is None  # index 3 still to run
    ended = index_verdict(4, None, IndexSet.parse("0,2-3"), one)
    assert ended is not None and (ended.reason, ended.message) == (
        "FailedIndexes", "Job has failed indexes")
    assert index_verdict(4, 1, none, one) is None
    over = index_verdict(4, 1, none, two)
    assert over is not None and over.reason == "MaxFailedIndexesExceeded"
    assert index_verdict(4, None, IndexSet.parse("0-3"), none) is None  # Complete: not here
    spec = JobSpecView(4, 2, 2**31 - 1, True, None, 1, 0)
    zero = verdict(spec, 0, 1, IndexSet(), 1, NOW, NOW, one)
    assert zero is not None and zero.reason == "MaxFailedIndexesExceeded"
    done = verdict(spec, 4, 0, IndexSet.parse("0-3"), 0, NOW, NOW, IndexSet())
    assert done is not None and done.type == "Complete"
