"""The pure arithmetic of a Job: indexes, how many pods to run, when it is done.

    completed indexes  "0-3,5,7-8" (corral/indexset.py's IndexSet)
    want_active        NonIndexed: min(parallelism, completions - succeeded);
                       no completions (a work queue): parallelism until one succeeds
    pending_indexes    Indexed: the lowest indexes neither completed nor running
    verdict            Complete / Failed(BackoffLimitExceeded | DeadlineExceeded |
                       index_verdict's) / None
    index_verdict      backoffLimitPerIndex: Failed(MaxFailedIndexesExceeded) when more
                       indexes failed than maxFailedIndexes, Failed(FailedIndexes) once
                       every index succeeded or failed and some failed (pods and
                       task arrays alike)
    failure_backoff    base · 2^(failures-1), capped: a crash-looping template is
                       not re-created in a tight loop
    FailureBackoff     that wait, timed on the injected Clock from when the
                       failure count last rose
    deadline_left      seconds until activeDeadlineSeconds runs out
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from corral.client.clock import Clock
from corral.indexset import IndexSet
from corral.objects import Obj, meta, status

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETE_REASON = "CompletionsReached"
COMPLETE_MESSAGE = "Reached expected number of succeeded pods"


def pod_index(pod: Obj) -> int | None:
    raw = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class JobSpecView:
    completions: int | None
    parallelism: int
    backoff_limit: int
    indexed: bool
    active_deadline: int | None
    backoff_limit_per_index: int | None = None
    max_failed_indexes: int | None = None

    @classmethod
    def of(cls, job: Obj) -> JobSpecView:
        spec = job.get("spec") or {}
        indexed = spec.get("completionMode") == "Indexed"
        per_index = spec.get("backoffLimitPerIndex") if indexed else None
        return cls(spec.get("completions"), int(spec.get("parallelism", 1)),
                   int(spec.get("backoffLimit", 6)), indexed,
                   spec.get("activeDeadlineSeconds"), per_index,
                   spec.get("maxFailedIndexes") if per_index is not None else None)


def want_active(spec: JobSpecView, succeeded: int, active: int) -> int:
    """How many pods should run now (NonIndexed)."""
    if spec.completions is None:
        return 0 if succeeded > 0 else spec.parallelism
    return max(min(spec.parallelism, spec.completions - succeeded), 0)


def pending_indexes(spec: JobSpecView, completed: IndexSet | set[int], running: set[int],
                    room: int) -> list[int]:
    """Up to ``room`` indexes to start, lowest first (``completed``: every index
    that must not run again, failed ones too)."""
    out: list[int] = []
    for i in range(spec.completions or 0):
        if len(out) >= room:
            break
        if i not in completed and i not in running:
            out.append(i)
    return out


@dataclass(frozen=True)
class Verdict:
    type: str  # Complete or Failed
    reason: str
    message: str


FAILED_INDEXES = "FailedIndexes"
MAX_FAILED_INDEXES_EXCEEDED = "MaxFailedIndexesExceeded"


def index_verdict(completions: int, max_failed: int | None, done: IndexSet,
                  failed: IndexSet) -> Verdict | None:
    """With backoffLimitPerIndex: fail at once past maxFailedIndexes, or when
    every index has ended and some failed (Kubernetes' reasons and messages)."""
    if max_failed is not None and len(failed) > max_failed:
        return Verdict("Failed", MAX_FAILED_INDEXES_EXCEEDED,
                       "Job has exceeded the specified maximal number of failed indexes")
    if failed and len(done) + len(failed) >= completions:
        return Verdict("Failed", FAILED_INDEXES, "Job has failed indexes")
    return None


def verdict(spec: JobSpecView, succeeded: int, failed: int, completed: IndexSet | set[int],
            active: int, started: datetime | None, now: datetime,
            failed_indexes: IndexSet | None = None) -> Verdict | None:
    if spec.indexed and spec.completions is not None and len(completed) >= spec.completions:
        return Verdict("Complete", COMPLETE_REASON, COMPLETE_MESSAGE)
    if not spec.indexed and spec.completions is not None and succeeded >= spec.completions:
        return Verdict("Complete", COMPLETE_REASON, COMPLETE_MESSAGE)
    if spec.completions is None and succeeded > 0 and active == 0:
        return Verdict("Complete", COMPLETE_REASON, COMPLETE_MESSAGE)
    if failed > spec.backoff_limit:
        return Verdict("Failed", "BackoffLimitExceeded",
                       "Job has reached the specified backoff limit")
    if spec.active_deadline is not None and started is not None \
            and (now - started).total_seconds() >= spec.active_deadline:
        return Verdict("Failed", "DeadlineExceeded",
                       "Job was active longer than specified deadline")
    if spec.backoff_limit_per_index is not None and failed_indexes is not None:
        done = completed if isinstance(completed, IndexSet) else IndexSet(
            (i, i + 1) for i in completed)
        return index_verdict(spec.completions or 0, spec.max_failed_indexes, done,
                             failed_indexes)
    return None


def failure_backoff(failures: int, base: float, cap: float) -> float:
    if failures <= 0:
        return 0.0
    return float(min(base * (2 ** min(failures - 1, 30)), cap))


def deadline_left(spec: JobSpecView, started: datetime | None, now: datetime) -> float | None:
    """Seconds until the Job has been active activeDeadlineSeconds (None: no
    deadline, or not started)."""
    if spec.active_deadline is None or started is None:
        return None
    return spec.active_deadline - (now - started).total_seconds()


class FailureBackoff:
    """Per Job: how long to wait before replacing failed pods, measured on the
    clock from the moment we saw the failure count rise."""

    def __init__(self, clock: Clock, base: float, cap: float) -> None:
        self.clock = clock
        self.base = base
        self.cap = cap
        self._last: dict[str, tuple[int, float]] = {}  # key → (failed, seen at)

    def left(self, key: str, failed: int) -> float:
        """Seconds still to wait (≤ 0: create now)."""
        seen_failed, since = self._last.get(key, (0, 0.0))
        if failed > seen_failed:
            since = self.clock.monotonic()
            self._last[key] = (failed, since)
        elif failed == 0:
            return 0.0
        wait = failure_backoff(failed, self.base, self.cap)
        return wait - (self.clock.monotonic() - since)

    def forget(self, key: str) -> None:
        """Drop the Job's record and its indexes' (keys "<key>#<index>")."""
        for known in [k for k in self._last if k == key or k.startswith(f"{key}#")]:
            del self._last[known]


def finished_condition(job: Obj) -> Obj | None:
    for c in status(job).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return dict(c)
    return None
