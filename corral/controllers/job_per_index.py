"""Backoff limit per index for Indexed Jobs run as pods (Kubernetes' KEP-3850):
the pure rules job.py applies when ``spec.backoffLimitPerIndex`` is set.

    failed pod of index i ──► FailIndex rule, or its failures + 1 > backoffLimitPerIndex
          │ yes: i joins status.failedIndexes, never runs again
          │ no:  the pod is held (tracking finalizer kept, not yet counted) until
          │      its replacement exists; the replacement carries the counts onward
          ▼
    replacement pod of i: annotations
      batch.kubernetes.io/job-index-failure-count          failures counted so far
      batch.kubernetes.io/job-index-ignored-failure-count  failures an Ignore rule matched

Holding the last failed pod of an index until its replacement is created is how
Kubernetes keeps the count without a per-index status field: the count lives on
the pods, and the pod that carries it cannot vanish before it is passed on.
The verdicts (FailedIndexes, MaxFailedIndexesExceeded) are job_status.index_verdict,
shared with task arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from corral.controllers.job_failure_policy import first_match
from corral.controllers.job_status import pod_index
from corral.controllers.pods import is_active, phase
from corral.indexset import IndexSet
from corral.objects import Obj, annotations_of, is_deleting, meta, spec

INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"


@dataclass(frozen=True)
class IndexFailures:
    """Failures of one index before a pod (as its annotations say)."""

    counted: int = 0
    ignored: int = 0

    @property
    def total(self) -> int:
        return self.counted + self.ignored

    @classmethod
    def of(cls, pod: Obj) -> IndexFailures:
        notes = annotations_of(pod)
        return cls(_count(notes.get(INDEX_FAILURE_COUNT)),
                   _count(notes.get(INDEX_IGNORED_FAILURE_COUNT)))

    def annotations(self) -> dict[str, str]:
        out = {INDEX_FAILURE_COUNT: str(self.counted)}
        if self.ignored:
            out[INDEX_IGNORED_FAILURE_COUNT] = str(self.ignored)
        return out


def _count(raw: str | None) -> int:
    """A count annotation; anything unreadable or out of int32 counts as 0, as
    Kubernetes reads it (a user may have edited it)."""
    try:
        value = int(raw or 0)
    except ValueError:
        return 0
    return value if 0 <= value <= 2**31 - 1 else 0


def per_index_limit(job: Obj) -> int | None:
    limit = spec(job).get("backoffLimitPerIndex")
    if limit is None or spec(job).get("completionMode") != "Indexed":
        return None
    return int(limit)


def is_failed_pod(pod: Obj) -> bool:
    """Done without success: phase Failed, or deleted before it finished."""
    return phase(pod) == "Failed" or (is_deleting(pod) and phase(pod) != "Succeeded")


def failures_after(job: Obj, pod: Obj) -> IndexFailures:
    """The index's counts once this failed pod is added: an Ignore rule's match
    goes to the ignored count, any other failure to the counted one."""
    before = IndexFailures.of(pod)
    match = first_match(job, pod)
    if match is not None and match.action == "Ignore":
        return IndexFailures(before.counted, before.ignored + 1)
    return IndexFailures(before.counted + 1, before.ignored)


def ends_index(job: Obj, pod: Obj, limit: int) -> bool:
    """Whether this failed pod fails its index for good: a FailIndex rule matched,
    or the index has now failed more than backoffLimitPerIndex times."""
    match = first_match(job, pod)
    if match is not None and match.action == "FailIndex":
        return True
    if match is not None and match.action == "Ignore":
        return False
    return failures_after(job, pod).counted > limit


def last_failed(pods: Iterable[Obj]) -> dict[int, Obj]:
    """Per index, its failed pod with the most failures before it (the newest)."""
    out: dict[int, Obj] = {}
    for pod in pods:
        index = pod_index(pod)
        if index is None or not is_failed_pod(pod) or is_active(pod):
            continue
        seen = out.get(index)
        if seen is None or _order(pod) > _order(seen):
            out[index] = pod
    return out


def _order(pod: Obj) -> tuple[int, str]:
    return IndexFailures.of(pod).total, str(meta(pod).get("creationTimestamp") or "")


def held(job: Obj, pods: list[Obj], limit: int, done: IndexSet,
         failed: IndexSet) -> set[str]:
    """uids of failed pods to keep (finalizer on, not counted) until their index
    has a replacement: the newest failed pod of each index still to run that
    has no active pod."""
    running = {i for p in pods if is_active(p) and (i := pod_index(p)) is not None}
    out: set[str] = set()
    for index, pod in last_failed(pods).items():
        if index in done or index in failed or index in running:
            continue
        match = first_match(job, pod)
        if match is not None and match.action == "FailJob":
            continue
        if not ends_index(job, pod, limit):
            out.add(str(meta(pod).get("uid")))
    return out


def replacement_failures(job: Obj, pods: list[Obj]) -> dict[int, IndexFailures]:
    """Per index that failed before, the counts its next pod starts with."""
    return {index: failures_after(job, pod) for index, pod in last_failed(pods).items()}
