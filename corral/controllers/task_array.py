"""Jobs run as tasks (``corral.dev/run-as: tasks``, Indexed): Allocs, not Pods.

    Job / Alloc / Node event ─► key "ns/job" ─► JobController.reconcile ─► here:
      1 count    an Alloc being removed (preempted, evicted from a dead node, idle,
                 or the Job is done) once it has settled (its agent wrote the last
                 status, or its node is gone): its completions, failed indices and
                 failures go into the Job's status with its uid listed in
                 uncountedTerminatedPods.failed — then its finalizer goes — then
                 its uid leaves the list. A crash between steps repeats a step,
                 never a count; a completion is recorded before the Alloc is let go.
      2 decide   Complete; Failed (BackoffLimitExceeded, FailedIndexes,
                 MaxFailedIndexesExceeded, DeadlineExceeded); suspended
      3 act      Allocs sized by parallelism and the task's requests
                 (array_plan.sizing); unassigned indices handed out in ranges;
                 an idle Alloc steals half of another's unclaimed range; idle
                 Allocs with nothing to steal are removed, and so is one whose
                 executor was lost (its unfinished indices run elsewhere once it
                 is counted); a finished or suspended Job removes them all
      4 status   succeeded, failed, active, completedIndexes, failedIndexes,
                 taskArray; conditions as Kubernetes words them

The master's cost does not grow with the number of tasks: a Job of 100,000
indices is the Job, a few Allocs and a few ranges.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Protocol

from corral.api.alloc_validation import RUN_AS, RUN_AS_TASKS
from corral.api.errors import AlreadyExists, Conflict, NotFound
from corral.api.quantity import bytes_value, cpu_millis
from corral.client.events import NORMAL, WARNING
from corral.client.http import Client
from corral.controllers.array_plan import (
    AllocState,
    Progress,
    TaskSize,
    hand_out,
    pool,
    progress,
    sizing,
    steal,
)
from corral.controllers.expectations import Expectations
from corral.controllers.informers import NAMESPACE, OWNER_UID, SharedInformers
from corral.controllers.job_status import (
    COMPLETE_MESSAGE,
    COMPLETE_REASON,
    TRACKING_FINALIZER,
    finished_condition,
    index_verdict,
)
from corral.controllers.owners import controller_ref, owner_reference
from corral.indexset import IndexSet
from corral.objects import (
    Obj,
    annotations_of,
    is_deleting,
    meta,
    name_of,
    parse_time,
    rfc3339,
    spec,
    status,
    uid_of,
)


class JobHost(Protocol):
    """What the Job controller (job.py) lends this half: its queue, expectations,
    events and the status and condition steps both kinds of Job share."""

    client: Client
    expectations: Expectations

    def enqueue_key(self, key: str) -> None: ...
    def requeue_after(self, key: str, seconds: float) -> None: ...
    def emit(self, obj: Obj, type_: str, reason: str, message: str) -> None: ...
    async def write_status(self, job: Obj, status: Obj) -> Obj: ...
    async def expire(self, key: str, job: Obj, status: Obj, now: datetime) -> None: ...
    def finish(self, job: Obj, status: Obj, type_: str, reason: str, message: str,
               now: datetime) -> Obj: ...
    def suspend(self, job: Obj, status: Obj, now: datetime) -> None: ...
    def resume(self, job: Obj, status: Obj, now: datetime) -> None: ...

log = logging.getLogger(__name__)

JOB_NAME = "batch.kubernetes.io/job-name"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
SETTLE_SLACK_SECONDS = 30.0  # past its grace, a deleting Alloc counts as settled
STATUS_EVERY_SECONDS = 0.5  # progress-only status writes at most this often
RESYNC_SECONDS = 5.0
REMEMBERED_REMOVED = 32  # removed Allocs whose node (keeping their logs) the Job lists


def is_task_array(job: Obj) -> bool:
    return annotations_of(job).get(RUN_AS) == RUN_AS_TASKS and spec(job).get(
        "completionMode") == "Indexed"


class TaskArrays:
    """The task-array half of the Job controller (it owns the queue and workers)."""

    def __init__(self, ctl: JobHost, informers: SharedInformers) -> None:
        self.ctl = ctl
        self.client = ctl.client
        self.allocs = informers.get("Alloc")
        self.nodes = informers.get("Node")
        self._written: dict[str, int] = {}  # alloc uid → resourceVersion we last wrote
        self._status_at: dict[str, float] = {}  # job key → when we last wrote status
        self.allocs.add_handler(self._alloc_added, lambda old, new: self._alloc_event(new),
                                self._alloc_event)
        self.nodes.add_handler(on_update=self._node_changed)

    # -- events --------------------------------------------------------------------

    def _job_key(self, alloc: Obj) -> str | None:
        ref = controller_ref(alloc)
        if ref is None or ref.get("kind") != "Job":
            return None
        return f"{meta(alloc).get('namespace')}/{ref.get('name')}"

    def _alloc_added(self, alloc: Obj) -> None:
        key = self._job_key(alloc)
        if key is not None:
            self.ctl.expectations.creation_observed(key)
            self.ctl.enqueue_key(key)

    def _alloc_event(self, alloc: Obj) -> None:
        key = self._job_key(alloc)
        if key is not None:
            self.ctl.enqueue_key(key)

    def _node_changed(self, old: Obj, new: Obj) -> None:
        if _ready(old) != _ready(new):  # a dead node's Allocs settle at once
            for alloc in self.allocs.list():
                if spec(alloc).get("nodeName") == name_of(new):
                    self._alloc_event(alloc)

    def owned(self, job: Obj) -> list[Obj]:
        return [a for a in self.allocs.by_index(OWNER_UID, uid_of(job))
                if (controller_ref(a) or {}).get("uid") == uid_of(job)]

    async def release_orphans(self, namespace: str, name: str, uid: str | None) -> None:
        """Allocs of a Job that is gone lose the finalizer, or they could never go."""
        for alloc in self.allocs.by_index(NAMESPACE, namespace):
            ref = controller_ref(alloc)
            if ref is not None and ref.get("kind") == "Job" and ref.get("name") == name \
                    and ref.get("uid") != uid and TRACKING_FINALIZER in _finalizers(alloc):
                await self._release(alloc)

    # -- reconcile ---------------------------------------------------------------------

    async def reconcile(self, key: str, job: Obj) -> None:
        allocs = self.owned(job)
        if any(_rv(a) < self._written.get(uid_of(a), 0) for a in allocs):
            self.ctl.requeue_after(key, 0.05)  # our own last write is not in the cache yet
            return
        job = await self._count_removed(job, allocs)
        st = copy.deepcopy(status(job))
        uncounted = set((st.get("uncountedTerminatedPods") or {}).get("failed") or [])
        states = [AllocState.of(a) for a in allocs]
        live = [s for s in states if s.uid not in uncounted]
        prog = progress(st, live)
        now = datetime.now(UTC)
        finished = finished_condition(job)
        if finished is None and not is_deleting(job):
            finished = self._decide(job, st, prog, now)
            if finished is None:
                await self._run(key, job, st, states, live, prog, now)
        if finished is not None:
            await self._remove(job, [s for s in live if not s.deleting], "the Job finished")
            await self.ctl.expire(key, job, st, now)
        self.ctl.requeue_after(key, RESYNC_SECONDS)
        await self._write_status(key, job, st, prog, live, uncounted, allocs)

    # -- 1 count Allocs being removed ------------------------------------------------------

    async def _count_removed(self, job: Obj, allocs: list[Obj]) -> Obj:
        st = copy.deepcopy(status(job))
        uncounted = (st.get("uncountedTerminatedPods") or {})
        listed = list(uncounted.get("failed") or [])
        settled = [a for a in allocs if is_deleting(a) and TRACKING_FINALIZER in _finalizers(a)
                   and self._settled(a)]
        new = [a for a in settled if uid_of(a) not in listed]
        if new:
            done = IndexSet.parse(st.get("completedIndexes"))
            failed = IndexSet.parse(st.get("failedIndexes"))
            array = dict(st.get("taskArray") or {})
            removed = dict(array.get("removed") or {})
            for alloc in new:
                state = AllocState.of(alloc)
                done.update(state.completed)
                failed.update(state.failed)
                array["removedFailures"] = int(array.get("removedFailures") or 0) + state.failures
                listed.append(state.uid)
                if state.node and (state.completed or state.failed or state.failures):
                    removed[state.name] = state.node  # its logs stay there
            array["removed"] = dict(list(removed.items())[-REMEMBERED_REMOVED:])
            st["completedIndexes"], st["failedIndexes"] = done.format(), (failed - done).format()
            st["succeeded"] = len(done)
            st["taskArray"] = array
            st["uncountedTerminatedPods"] = {**uncounted, "failed": listed}
            job = await self.ctl.write_status(job, st)
        for alloc in settled:
            await self._release(alloc)
        return job

    def _settled(self, alloc: Obj) -> bool:
        """A deleting Alloc whose tasks can no longer change anything: its agent
        wrote the last status, it never ran, its node is gone or not Ready, or its
        grace ran out long ago."""
        node_name = spec(alloc).get("nodeName")
        if status(alloc).get("phase") in ("Succeeded", "Failed") or not node_name:
            return True
        node = self.nodes.get_by_key(str(node_name))
        if node is None or _ready(node) != "True":
            return True
        deleted = parse_time(meta(alloc).get("deletionTimestamp"))
        return deleted is not None and (datetime.now(UTC) - deleted).total_seconds() > \
            SETTLE_SLACK_SECONDS

    async def _release(self, alloc: Obj) -> None:
        m = meta(alloc)
        rest = [f for f in m.get("finalizers") or [] if f != TRACKING_FINALIZER]
        patch = {"metadata": {"finalizers": rest or None}}
        with contextlib.suppress(NotFound):
            await self.client.patch("Alloc", str(m["name"]), patch, m.get("namespace"))

    # -- 2 decide ----------------------------------------------------------------------------

    def _decide(self, job: Obj, st: Obj, prog: Progress, now: datetime) -> Obj | None:
        s = spec(job)
        completions = int(s.get("completions") or 0)
        per_index = s.get("backoffLimitPerIndex")
        started = parse_time(st.get("startTime"))
        deadline = s.get("activeDeadlineSeconds")
        outcome: tuple[str, str, str] | None = None
        if deadline is not None and started is not None and not s.get("suspend") and \
                (now - started).total_seconds() >= int(deadline):
            outcome = ("Failed", "DeadlineExceeded",
                       "Job was active longer than specified deadline")
        elif per_index is None and prog.failures > int(s.get("backoffLimit", 6)):
            outcome = ("Failed", "BackoffLimitExceeded",
                       "Job has reached the specified backoff limit")
        elif (by_index := index_verdict(completions, s.get("maxFailedIndexes"), prog.done,
                                        prog.failed)) is not None:
            outcome = (by_index.type, by_index.reason, by_index.message)
        elif len(prog.done) >= completions:
            outcome = ("Complete", COMPLETE_REASON, COMPLETE_MESSAGE)
        if outcome is None:
            if deadline is not None and started is not None:
                left = int(deadline) - (now - started).total_seconds()
                self.ctl.requeue_after(f"{meta(job).get('namespace')}/{name_of(job)}",
                                       left + 0.05)
            return None
        st["succeeded"] = len(prog.done)
        return self.ctl.finish(job, st, *outcome, now)

    # -- 3 act -------------------------------------------------------------------------------

    async def _run(self, key: str, job: Obj, st: Obj, states: list[AllocState],
                   live: list[AllocState], prog: Progress, now: datetime) -> None:
        if spec(job).get("suspend"):
            await self._remove(job, [s for s in live if not s.deleting], "the Job is suspended")
            self.ctl.suspend(job, st, now)
            return
        self.ctl.resume(job, st, now)
        if not self.ctl.expectations.satisfied(key):
            return
        completions = int(spec(job).get("completions") or 0)
        remaining = completions - len(prog.done) - len(prog.failed)
        task = TaskSize.of(job)
        size = sizing(int(spec(job).get("parallelism") or 1), remaining, self._node_sizes(),
                      task)
        if size is None:
            self.ctl.emit(job, WARNING, "TaskTooLarge",
                          "no node can hold one task of this Job: "
                          f"it requests {task.times(1)}")
            return
        free = pool(completions, prog, states)
        active = [s for s in live if not s.deleting and not s.lost]
        lost = [s for s in live if s.lost]
        if lost:  # replaced once it is counted and gone, its unfinished work with it
            await self._remove(job, lost, "its executor was lost")
        missing = size.allocs - len(active)
        if free and missing > 0:
            await self._create(key, job, size.slots, task, free, missing, states)
            return
        namespace = str(meta(job).get("namespace"))
        if await self._hand_out(namespace, free, active, prog.done):
            return
        if await self._steal(namespace, active, prog.done):
            return
        idle = [s for s in active if s.idle(prog.done) and s.node]
        if idle and not free:
            await self._remove(job, idle, "it has no work left")

    def _node_sizes(self) -> list[tuple[int, int]]:
        sizes = []
        for node in self.nodes.list():
            if spec(node).get("unschedulable") or _ready(node) != "True":
                continue
            alloc = status(node).get("allocatable") or {}
            sizes.append((int(cpu_millis(alloc.get("cpu") or "0")),
                          int(bytes_value(alloc.get("memory") or "0"))))
        return sizes

    async def _create(self, key: str, job: Obj, slots: int, task: TaskSize, free: IndexSet,
                      count: int, states: list[AllocState]) -> None:
        taken = {s.name for s in states}
        names = _free_names(name_of(job), taken, count)
        share = -(-len(free) // count)
        bodies = [self._alloc(job, name, slots, task, free.take_first(share)) for name in names]
        bodies = [b for b in bodies if spec(b).get("ranges")]
        self.ctl.expectations.expect_creations(key, len(bodies))
        created = 0
        for body in bodies:
            try:
                await self.client.create(body)
                created += 1
            except AlreadyExists:
                self.ctl.expectations.creation_observed(key)
            except Exception:
                for _ in range(len(bodies) - created):
                    self.ctl.expectations.creation_observed(key)
                raise
        self.ctl.emit(job, NORMAL, "SuccessfulCreate",
                      f"Created {created} alloc{'s' if created != 1 else ''} of {slots} "
                      f"slot{'s' if slots != 1 else ''}")

    def _alloc(self, job: Obj, name: str, slots: int, task: TaskSize, ranges: IndexSet) -> Obj:
        template = spec(job).get("template") or {}
        pod = spec(template)
        container = (pod.get("containers") or [{}])[0]
        env = [{"name": e["name"], "value": str(e.get("value") or "")}
               for e in container.get("env") or () if "valueFrom" not in e]
        body_spec: Obj = {
            "slots": slots, "ranges": ranges.format(),
            "task": {"command": [*(container.get("command") or ()),
                                 *(container.get("args") or ())], "env": env},
        }
        if container.get("workingDir"):
            body_spec["task"]["workingDir"] = container["workingDir"]
        # Whom the tasks run as: the template's, as its pods would (agent/run_as.py).
        if container.get("name"):
            body_spec["task"]["name"] = container["name"]
        if container.get("securityContext"):
            body_spec["task"]["securityContext"] = container["securityContext"]
        if pod.get("securityContext"):
            body_spec["securityContext"] = pod["securityContext"]
        if task.times(slots):
            body_spec["resources"] = task.times(slots)
        if task.times(1):
            body_spec["task"]["resources"] = task.times(1)
        for field in ("priorityClassName", "nodeSelector", "affinity", "tolerations",
                      "schedulerName", "terminationGracePeriodSeconds"):
            if pod.get(field) is not None:
                body_spec[field] = pod[field]
        if spec(job).get("backoffLimitPerIndex") is not None:
            body_spec["backoffLimitPerIndex"] = spec(job)["backoffLimitPerIndex"]
        labels = {**(meta(template).get("labels") or {}), JOB_NAME: name_of(job),
                  CONTROLLER_UID: uid_of(job)}
        return {"apiVersion": "corral.dev/v1", "kind": "Alloc",
                "metadata": {"name": name, "namespace": meta(job).get("namespace"),
                             "labels": labels, "ownerReferences": [owner_reference(job)],
                             "finalizers": [TRACKING_FINALIZER]},
                "spec": body_spec}

    async def _hand_out(self, namespace: str, free: IndexSet, active: list[AllocState],
                        done: IndexSet) -> bool:
        changes = hand_out(free, active, done)
        for name, ranges in changes.items():
            await self._set_ranges(namespace, name, ranges)
        return bool(changes)

    async def _steal(self, namespace: str, active: list[AllocState], done: IndexSet) -> bool:
        move = steal(active, done)
        if move is None:
            return False
        # The victim gives up first: a crash between the writes leaves the moved
        # indices in no one's range, and the pool hands them out again.
        if await self._set_ranges(namespace, move.victim, move.victim_ranges):
            await self._set_ranges(namespace, move.thief, move.thief_ranges)
        log.info("work stolen victim=%s thief=%s", move.victim, move.thief)
        return True

    async def _set_ranges(self, namespace: str, name: str, ranges: IndexSet) -> bool:
        """Compare-and-swap the Alloc's spec.ranges; a Conflict (its agent just wrote
        claims) means: read again next time."""
        alloc = self.allocs.get_by_key(f"{namespace}/{name}")
        if alloc is None:
            return False
        body = copy.deepcopy(alloc)
        body["spec"]["ranges"] = ranges.format()
        try:
            written = await self.client.update(body)
        except (Conflict, NotFound):
            return False
        self._written[uid_of(written)] = _rv(written)
        return True

    async def _remove(self, job: Obj, victims: list[AllocState], why: str) -> None:
        namespace = meta(job).get("namespace")

        async def delete(state: AllocState) -> None:
            with contextlib.suppress(NotFound, Conflict):
                await self.client.delete("Alloc", state.name, namespace,
                                         preconditions={"uid": state.uid})

        await asyncio.gather(*(delete(s) for s in victims))
        if victims:
            self.ctl.emit(job, NORMAL, "SuccessfulDelete",
                          f"Deleted {len(victims)} alloc{'s' if len(victims) != 1 else ''}: "
                          f"{why}")

    # -- 4 status ----------------------------------------------------------------------------

    async def _write_status(self, key: str, job: Obj, st: Obj, prog: Progress,
                            live: list[AllocState], uncounted: set[str],
                            allocs: list[Obj]) -> None:
        present = {uid_of(a) for a in allocs}
        gone = [u for u in uncounted if u not in present]
        if gone:
            rest = [u for u in (st.get("uncountedTerminatedPods") or {}).get("failed") or []
                    if u not in gone]
            st["uncountedTerminatedPods"] = {"failed": rest} if rest else {}
        st.setdefault("startTime", rfc3339(datetime.now(UTC)))
        running = 0 if finished_condition({"status": st}) else prog.running
        st.update({"active": running, "ready": running, "succeeded": len(prog.done),
                   "failed": prog.failures, "completedIndexes": prog.done.format()})
        if prog.failed:
            st["failedIndexes"] = prog.failed.format()
        st["taskArray"] = {**(st.get("taskArray") or {}), "allocs": len(live)}
        if st == status(job):
            return
        # Progress alone (counts, indexes) is written at most every STATUS_EVERY_SECONDS.
        wait = self._status_at.get(key, 0.0) + STATUS_EVERY_SECONDS - time.monotonic()
        if wait > 0 and _progress_only(status(job), st):
            self.ctl.requeue_after(key, wait)
            return
        self._status_at[key] = time.monotonic()
        await self.ctl.write_status(job, st)


_PROGRESS = ("active", "ready", "succeeded", "failed", "completedIndexes", "failedIndexes",
             "taskArray")


def _progress_only(old: Obj, new: Obj) -> bool:
    rest = set(old) | set(new)
    return all(old.get(k) == new.get(k) for k in rest if k not in _PROGRESS)


def _free_names(job_name: str, taken: set[str], count: int) -> list[str]:
    """New names, never one an earlier Alloc had: a replacement is a new object
    (a reused name would meet its predecessor's leftovers, e.g. ledger entries)."""
    names: list[str] = []
    while len(names) < count:
        name = f"{job_name}-{secrets.token_hex(3)}"
        if name not in taken and name not in names:
            names.append(name)
    return names


def _finalizers(obj: Obj) -> list[str]:
    return list(meta(obj).get("finalizers") or [])


def _ready(node: Obj) -> str:
    for c in status(node).get("conditions") or ():
        if c.get("type") == "Ready":
            return str(c.get("status"))
    return "Unknown"


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0
