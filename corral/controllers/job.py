"""The Job controller: run pods to ``completions`` successes, ``parallelism`` at
a time, and finish Complete or Failed.

    Job / Pod event ─► key "ns/job" ─► reconcile:
      1 track    finished pods still carrying the batch.kubernetes.io/job-tracking
                 finalizer → status.uncountedTerminatedPods (written first), then the
                 finalizer is removed, then they move into succeeded/failed. A crash
                 between the steps repeats a step, never a count: no completion is
                 lost or counted twice.
                 A failed pod matching a podFailurePolicy rule (job_failure_policy.py)
                 may fail the Job at once (FailJob) or not count at all (Ignore).
                 backoffLimitPerIndex (job_per_index.py): a failed pod past its
                 index's limit, or matching FailIndex, adds the index to
                 failedIndexes; one that is not is held until its replacement
                 exists, which carries the index's failure counts on.
      2 decide   verdict: Complete, Failed (BackoffLimitExceeded, DeadlineExceeded,
                 FailedIndexes, MaxFailedIndexesExceeded)
      3 act      suspended → delete active pods; running → create (Indexed: per
                 missing index, JOB_COMPLETION_INDEX env + annotation; per-index
                 back-off per index) or delete extras (failed indexes' pods too);
                 finished → delete active pods; ttlSecondsAfterFinished → delete the Job
      4 status   active/ready/succeeded/failed/startTime/completionTime/conditions

A Job annotated ``corral.dev/run-as: tasks`` (Indexed) runs no pods: task_array.py
runs its indices as tasks in Allocs, with the same verdicts and status.
"""

from __future__ import annotations

import asyncio
import copy
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from corral.api.errors import Conflict, NotFound
from corral.client.clock import Clock, RealClock
from corral.client.events import NORMAL, WARNING, EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.expectations import Expectations
from corral.controllers.informers import NAMESPACE, OWNER_UID, SharedInformers
from corral.controllers.job_failure_policy import first_match
from corral.controllers.job_per_index import (
    IndexFailures,
    ends_index,
    held,
    per_index_limit,
    replacement_failures,
)
from corral.controllers.job_status import (
    COMPLETION_INDEX,
    FAILED_INDEXES,
    MAX_FAILED_INDEXES_EXCEEDED,
    TRACKING_FINALIZER,
    FailureBackoff,
    JobSpecView,
    deadline_left,
    finished_condition,
    pending_indexes,
    pod_index,
    verdict,
    want_active,
)
from corral.controllers.owners import controller_ref
from corral.controllers.podcontrol import create_owned
from corral.controllers.pods import (
    is_active,
    is_ready,
    phase,
    pod_from_template,
    rank_for_deletion,
)
from corral.controllers.task_array import TaskArrays, is_task_array
from corral.indexset import IndexSet
from corral.objects import Obj, is_deleting, meta, parse_time, rfc3339, spec, uid_of


@dataclass
class JobOptions:
    backoff_base: float = 1.0  # Kubernetes uses 10 s; a fast cluster wants quicker retries
    backoff_cap: float = 60.0
    workers: int = 4

    @classmethod
    def from_env(cls) -> JobOptions:
        return cls(float(os.environ.get("CORRAL_JOB_BACKOFF_BASE", "1.0")),
                   float(os.environ.get("CORRAL_JOB_BACKOFF_CAP", "60.0")))


FAILURE_TARGET = "FailureTarget"  # the Job will fail once its failed pods are counted
POD_FAILURE_POLICY = "PodFailurePolicy"


def has_tracking(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or [])


def terminated_outcome(pod: Obj) -> str | None:
    """"succeeded" / "failed" for a pod that is done (a pod deleted before it
    finished counts as failed); None while it runs."""
    if phase(pod) == "Succeeded":
        return "succeeded"
    if phase(pod) == "Failed" or is_deleting(pod):
        return "failed"
    return None


class JobController(Controller):
    name = "job-controller"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, options: JobOptions | None = None, clock: Clock | None = None) -> None:
        self.options = options or JobOptions()
        self.clock = clock or RealClock()
        super().__init__(client, informers, recorder, workers=self.options.workers)
        self.expectations = Expectations()
        self.jobs = informers.get("Job")
        self.pods = informers.get("Pod")
        self.backoff = FailureBackoff(self.clock, self.options.backoff_base,
                                      self.options.backoff_cap)
        self.jobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.pods.add_handler(self._pod_added, lambda old, new: self._pod_changed(new),
                              self._pod_deleted)
        self.arrays = TaskArrays(self, informers)  # Jobs run as tasks, in Allocs

    def _job_key(self, pod: Obj) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        return f"{meta(pod).get('namespace')}/{ref.get('name')}"

    def _pod_added(self, pod: Obj) -> None:
        key = self._job_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue_key(key)

    def _pod_changed(self, pod: Obj) -> None:
        key = self._job_key(pod)
        if key is not None:
            self.enqueue_key(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._job_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, uid_of(pod))
            self.enqueue_key(key)

    # -- reconcile -------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        job = self.jobs.get_by_key(key)
        namespace, name = split_key(key)
        if job is None:
            self.expectations.forget(key)
            self.backoff.forget(key)
            await self.arrays.release_orphans(namespace or "", name, None)
            return await self._release_orphans(namespace or "", name, None)
        if is_task_array(job):
            await self.arrays.release_orphans(namespace or "", name, uid_of(job))
            return await self.arrays.reconcile(key, job)
        await self._release_orphans(namespace or "", name, uid_of(job))
        pods = [p for p in self.pods.by_index(OWNER_UID, uid_of(job))
                if (controller_ref(p) or {}).get("uid") == uid_of(job)]
        job = await self._track(job, pods)
        await self._sync(key, job, pods)

    async def _release_orphans(self, namespace: str, name: str, uid: str | None) -> None:
        """Pods of a Job that is gone (or was replaced by a namesake) lose the
        tracking finalizer, or they could never be deleted."""
        for pod in self.pods.by_index(NAMESPACE, namespace):
            ref = controller_ref(pod)
            if ref is not None and ref.get("kind") == "Job" and ref.get("name") == name \
                    and ref.get("uid") != uid and has_tracking(pod):
                await self._remove_finalizer(pod)

    async def _track(self, job: Obj, pods: list[Obj]) -> Obj:
        """Steps 1: record newly finished pods, drop their finalizers, count them."""
        status = copy.deepcopy(job.get("status") or {})
        uncounted = status.get("uncountedTerminatedPods") or {}
        lists = {o: list(uncounted.get(o) or []) for o in ("succeeded", "failed")}
        completed = IndexSet.parse(status.get("completedIndexes"))
        failed_indexes = IndexSet.parse(status.get("failedIndexes"))
        indexed = spec(job).get("completionMode") == "Indexed"
        # A pod deleted because the Job ended or was suspended did not fail its index.
        stopping = finished_condition(job) is not None or spec(job).get("suspend")
        limit = None if stopping else per_index_limit(job)
        holding = self._held(job, pods, limit, completed, failed_indexes)
        new, ignored, fail_job = False, list[Obj](), None
        for pod in pods:
            outcome = terminated_outcome(pod)
            uid = uid_of(pod)
            if outcome is None or not has_tracking(pod) or uid in lists["succeeded"] \
                    or uid in lists["failed"] or uid in holding:
                continue
            match = first_match(job, pod) if outcome == "failed" else None
            index = pod_index(pod)
            if limit is not None and outcome == "failed" and index is not None \
                    and index not in completed and ends_index(job, pod, limit):
                failed_indexes.add(index)
                new = True
            if match is not None and match.action == "Ignore":
                ignored.append(pod)
                continue
            if match is not None and match.action == "FailJob":
                fail_job = fail_job or match
            lists[outcome].append(uid)
            if outcome == "succeeded" and indexed and index is not None:
                completed.add(index)
            new = True
        if new:
            status["uncountedTerminatedPods"] = lists
            if indexed:
                status["completedIndexes"] = completed.format()
            if limit is not None:
                status["failedIndexes"] = (failed_indexes - completed).format()
            if fail_job is not None and finished_condition(job) is None:
                status["conditions"] = _set(list(status.get("conditions") or []),
                                            FAILURE_TARGET, "True", POD_FAILURE_POLICY,
                                            fail_job.message, self.clock.now())
            job = await self.write_status(job, status)
        uncounted_uids = set(lists["succeeded"]) | set(lists["failed"])
        flushed = [p for p in pods if uid_of(p) in uncounted_uids and has_tracking(p)]
        await asyncio.gather(*(self._remove_finalizer(p) for p in [*flushed, *ignored]))
        if not uncounted_uids:
            return job
        status = copy.deepcopy(job.get("status") or {})
        for outcome in ("succeeded", "failed"):
            status[outcome] = int(status.get(outcome) or 0) + len(lists[outcome])
        if indexed:
            status["succeeded"] = len(IndexSet.parse(status.get("completedIndexes")))
        status["uncountedTerminatedPods"] = {}
        self._fail_by_policy(job, status)
        return await self.write_status(job, status)

    def _held(self, job: Obj, pods: list[Obj], limit: int | None, done: IndexSet,
              failed: IndexSet) -> set[str]:
        """Failed pods whose index will run again keep their finalizer (and stay
        uncounted) until the replacement exists: they carry the index's count.
        A Job being deleted holds none."""
        if limit is None or is_deleting(job):
            return set()
        return held(job, pods, limit, done, failed)

    def _fail_by_policy(self, job: Obj, status: Obj) -> None:
        """A pod matched a FailJob rule: FailureTarget was written with the pod's
        uid (so a crash cannot lose the verdict); once the pods are counted the
        Job is Failed with the rule's message (deleting its pods follows)."""
        target = next((c for c in status.get("conditions") or []
                       if c.get("type") == FAILURE_TARGET and c.get("status") == "True"), None)
        if target is not None and finished_condition({"status": status}) is None:
            self.finish(job, status, "Failed", str(target.get("reason")),
                        str(target.get("message")), self.clock.now())

    async def _remove_finalizer(self, pod: Obj) -> None:
        m = meta(pod)
        rest = [f for f in m.get("finalizers") or [] if f != TRACKING_FINALIZER]
        patch = {"metadata": {"finalizers": rest or None, "resourceVersion": m.get(
            "resourceVersion")}}
        try:
            await self.client.patch("Pod", m["name"], patch, m.get("namespace"))
        except NotFound:
            pass

    async def _sync(self, key: str, job: Obj, pods: list[Obj]) -> None:
        now = self.clock.now()
        spec = JobSpecView.of(job)
        status = copy.deepcopy(job.get("status") or {})
        active = [p for p in pods if is_active(p)]
        finished = finished_condition(job)
        if finished is None and not is_deleting(job):
            finished = await self._run(key, job, spec, status, pods, active, now)
        if finished is not None:
            await self._delete_pods(key, job, active)
            active = []
            await self.expire(key, job, status, now)
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if is_ready(p))
        if status != (job.get("status") or {}):
            await self.write_status(job, status)

    async def _run(self, key: str, job: Obj, spec: JobSpecView, status: Obj, pods: list[Obj],
                   active: list[Obj], now: datetime) -> Obj | None:
        """A Job still running: suspend, finish, or keep the right pods going."""
        if (job.get("spec") or {}).get("suspend"):
            await self._delete_pods(key, job, active)
            active.clear()
            self.suspend(job, status, now)
            return None
        self.resume(job, status, now)
        succeeded, failed = int(status.get("succeeded") or 0), int(status.get("failed") or 0)
        completed = IndexSet.parse(status.get("completedIndexes"))
        started = parse_time(status.get("startTime"))
        outcome = verdict(spec, succeeded, failed, completed, len(active), started, now,
                          IndexSet.parse(status.get("failedIndexes")))
        if outcome is not None:
            if outcome.reason in (FAILED_INDEXES, MAX_FAILED_INDEXES_EXCEEDED):
                # As Kubernetes: FailureTarget first, then Failed with the same words.
                status["conditions"] = _set(list(status.get("conditions") or []),
                                            FAILURE_TARGET, "True", outcome.reason,
                                            outcome.message, now)
            return self.finish(job, status, outcome.type, outcome.reason, outcome.message, now)
        left = deadline_left(spec, started, now)
        if left is not None:
            self.requeue_after(key, left + 0.05)
        if self.expectations.satisfied(key):
            await self._manage(key, job, spec, status, pods, active, failed)
        return None

    def suspend(self, job: Obj, status: Obj, now: datetime) -> None:
        conditions = list(status.get("conditions") or [])
        status["conditions"] = _set(conditions, "Suspended", "True", "JobSuspended",
                                    "Job suspended", now)

    def resume(self, job: Obj, status: Obj, now: datetime) -> None:
        conditions = list(status.get("conditions") or [])
        if any(c.get("type") == "Suspended" and c.get("status") == "True" for c in conditions):
            status["conditions"] = _set(conditions, "Suspended", "False", "JobResumed",
                                        "Job resumed", now)
            status["startTime"] = rfc3339(now)
            self.emit(job, NORMAL, "Resumed", "Job resumed")
        status.setdefault("startTime", rfc3339(now))

    def finish(self, job: Obj, status: Obj, type_: str, reason: str, message: str,
               now: datetime) -> Obj:
        conditions = list(status.get("conditions") or [])
        status["conditions"] = _set(conditions, type_, "True", reason, message, now)
        if type_ == "Complete":
            status["completionTime"] = rfc3339(now)
            self.emit(job, NORMAL, "Completed", "Job completed")
        else:
            self.emit(job, WARNING, reason, message)
        return status["conditions"][-1]  # type: ignore[no-any-return]

    async def _manage(self, key: str, job: Obj, spec: JobSpecView, status: Obj,
                      pods: list[Obj], active: list[Obj], failed: int) -> None:
        delay = 0.0 if spec.backoff_limit_per_index is not None else self.backoff.left(key, failed)
        if spec.indexed:
            ended = IndexSet.parse(status.get("completedIndexes")) | IndexSet.parse(
                status.get("failedIndexes"))
            running = {i for p in active if (i := pod_index(p)) is not None}
            room = spec.parallelism - len(active)
            todo = pending_indexes(spec, ended, running, room)
            extras = _duplicate_indexes(active) + [p for p in active if pod_index(p) in ended]
        else:
            succeeded = int(status.get("succeeded") or 0)
            diff = want_active(spec, succeeded, len(active)) - len(active)
            todo = list(range(diff)) if diff > 0 else []
            extras = rank_for_deletion(active)[:-diff] if diff < 0 else []
        if extras:
            await self._delete_pods(key, job, extras)
        counts: dict[int, IndexFailures] = {}
        if todo and spec.backoff_limit_per_index is not None:
            counts = replacement_failures(job, pods)
            todo = self._past_index_backoff(key, todo, counts)
        if todo and delay > 0:
            self.requeue_after(key, delay)
        elif todo:
            await self._create(key, job, spec, todo, counts)

    def _past_index_backoff(self, key: str, todo: list[int],
                            counts: dict[int, IndexFailures]) -> list[int]:
        """Indexes whose own back-off (from their failures so far) is over; the
        Job is looked at again when the next one's ends."""
        ready, waits = [], []
        for index in todo:
            wait = self.backoff.left(f"{key}#{index}", counts.get(index, IndexFailures()).total)
            if wait > 0:
                waits.append(wait)
            else:
                ready.append(index)
        if waits:
            self.requeue_after(key, min(waits))
        return ready

    async def _create(self, key: str, job: Obj, spec: JobSpecView, todo: list[int],
                      counts: dict[int, IndexFailures]) -> None:
        template = (job.get("spec") or {}).get("template") or {}
        namespace = str(meta(job).get("namespace"))
        name = str(meta(job).get("name"))
        per_index = spec.backoff_limit_per_index is not None
        pods = [self._pod(template, job, namespace, name, i if spec.indexed else None,
                          counts.get(i, IndexFailures()) if per_index else None)
                for i in todo]
        await create_owned(self, self.expectations, key, job, pods)

    @staticmethod
    def _pod(template: Obj, job: Obj, namespace: str, name: str, index: int | None,
             failures: IndexFailures | None = None) -> Obj:
        if index is None:
            return pod_from_template(template, job, namespace, generate_name=f"{name}-",
                                     finalizers=[TRACKING_FINALIZER])
        notes = {COMPLETION_INDEX: str(index),
                 **(failures.annotations() if failures is not None else {})}
        pod = pod_from_template(template, job, namespace, generate_name=f"{name}-{index}-",
                                extra_labels={COMPLETION_INDEX: str(index)},
                                extra_annotations=notes,
                                finalizers=[TRACKING_FINALIZER])
        spec = pod["spec"]
        for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
            env = [e for e in container.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
            container["env"] = [*env, {"name": "JOB_COMPLETION_INDEX", "value": str(index)}]
        return pod

    async def _delete_pods(self, key: str, job: Obj, pods: list[Obj]) -> None:
        if not pods:
            return
        self.expectations.expect_deletions(key, [uid_of(p) for p in pods])

        async def delete(pod: Obj) -> None:
            m = meta(pod)
            try:
                await self.client.delete("Pod", m["name"], m.get("namespace"),
                                          preconditions={"uid": uid_of(pod)})
            except (NotFound, Conflict):
                self.expectations.deletion_observed(key, uid_of(pod))

        await asyncio.gather(*(delete(p) for p in pods))
        self.emit(job, NORMAL, "SuccessfulDelete", f"Deleted {len(pods)} pod"
                  f"{'s' if len(pods) > 1 else ''}")

    async def expire(self, key: str, job: Obj, status: Obj, now: datetime) -> None:
        """ttlSecondsAfterFinished: delete the Job (and, in the foreground, its pods)."""
        ttl = spec(job).get("ttlSecondsAfterFinished")
        finished = finished_condition({"status": status})
        if ttl is None or finished is None or is_deleting(job):
            return
        at = parse_time(status.get("completionTime") or finished.get("lastTransitionTime"))
        if at is None:
            return
        left = (at + timedelta(seconds=int(ttl)) - now).total_seconds()
        if left > 0:
            self.requeue_after(key, left + 0.05)
            return
        try:
            await self.client.delete("Job", str(meta(job)["name"]), meta(job).get("namespace"),
                                     propagation_policy="Foreground",
                                     preconditions={"uid": uid_of(job)})
        except NotFound:
            pass

    async def write_status(self, job: Obj, status: Obj) -> Obj:
        fresh = copy.deepcopy(job)
        fresh["status"] = status
        return await self.client.update_status(fresh)


def _set(conditions: list[Obj], type_: str, status: str, reason: str, message: str,
         now: datetime) -> list[Obj]:
    old = next((c for c in conditions if c.get("type") == type_), None)
    if old is not None and old.get("status") == status:
        return conditions
    stamp = rfc3339(now)
    new = {"type": type_, "status": status, "reason": reason, "message": message,
           "lastProbeTime": stamp, "lastTransitionTime": stamp}
    return [c for c in conditions if c.get("type") != type_] + [new]


def _duplicate_indexes(active: list[Obj]) -> list[Obj]:
    """Of several running pods with one index, all but the oldest."""
    seen: dict[int, Obj] = {}
    extras = []
    for pod in sorted(active, key=lambda p: str(meta(p).get("creationTimestamp") or "")):
        index = pod_index(pod)
        if index is None:
            continue
        if index in seen:
            extras.append(pod)
        else:
            seen[index] = pod
    return extras
