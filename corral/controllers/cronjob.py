"""The CronJob controller: Jobs made on a schedule, as Kubernetes' cronjob
controller (v2) makes them.

    CronJob / Job event, or the next scheduled time ─► key "ns/cronjob" ─► reconcile:
      the CronJob's Jobs (by owner): finished ones leave status.active
        (SawCompletedJob; lastSuccessfulTime), unfinished ones missing from it
        join it (one made just before a crash), references to Jobs that are gone
        are dropped; one made by hand (`kubectl create job --from=cronjob/...`)
        never joins, as in Kubernetes (UnexpectedJob): it does not hold back a
        Forbid schedule, nor is it replaced
      suspended, or an unusable schedule/time zone ─► nothing to start
      the most recent scheduled time in (lastScheduleTime or creation, now],
        not earlier than now - startingDeadlineSeconds
          none ─► wait for the next one
          past its starting deadline ─► MissSchedule
          Forbid with Jobs active ─► JobAlreadyActive (wait)
          Replace ─► delete the active Jobs first
          ─► create Job "<cronjob>-<scheduled unix minutes>" (the name makes a
             repeated create harmless), lastScheduleTime = that time
      finished Jobs beyond the history limits are deleted, oldest first
      requeue at the next scheduled time

``plan`` is the pure part (tested with a fixed clock); the controller applies it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from corral import cronschedule
from corral.api.errors import AlreadyExists, NotFound
from corral.client.clock import Clock, RealClock
from corral.client.events import NORMAL, WARNING, EventRecorder
from corral.client.http import Client
from corral.controllers.base import Controller, split_key
from corral.controllers.informers import OWNER_UID, SharedInformers
from corral.controllers.job_status import finished_condition
from corral.controllers.owners import controller_ref, owner_reference
from corral.objects import (
    Obj,
    is_deleting,
    meta,
    name_of,
    parse_time,
    rfc3339,
    spec,
    status,
    uid_of,
)

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
INSTANTIATE = "cronjob.kubernetes.io/instantiate"  # "manual": made by kubectl create job
CRONJOB_NAME_LABEL = "batch.kubernetes.io/cronjob-name"


@dataclass
class Plan:
    """What one reconcile does: Jobs to delete and (at most) one to create, the
    status to write, Events to record, and when to look again."""

    status: Obj
    create: Obj | None = None
    delete: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    requeue_after: float | None = None

    def note(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def finished(job: Obj) -> str | None:
    """"Complete" or "Failed" when the Job has ended, else None."""
    condition = finished_condition(job)
    return str(condition["type"]) if condition else None


def job_name(cronjob: Obj, scheduled: datetime) -> str:
    return f"{name_of(cronjob)}-{int(scheduled.timestamp()) // 60}"


def plan(cronjob: Obj, jobs: list[Obj], now: datetime) -> Plan:
    result = Plan(status=copy.deepcopy(status(cronjob)))
    _track_active(cronjob, jobs, result)
    result.delete += _beyond_history(cronjob, jobs)
    if is_deleting(cronjob) or spec(cronjob).get("suspend"):
        return result
    try:
        schedule = cronschedule.parse(str(spec(cronjob).get("schedule") or ""),
                                      spec(cronjob).get("timeZone"))
    except cronschedule.BadSchedule as err:
        reason = "UnknownTimeZone" if "time zone" in str(err) else "InvalidSchedule"
        result.note(WARNING, reason, str(err))
        return result
    _start_due_job(cronjob, schedule, now, result)
    following = schedule.next_after(now)
    result.requeue_after = (following - now).total_seconds() + 0.1
    return result


def _track_active(cronjob: Obj, jobs: list[Obj], result: Plan) -> None:
    by_name = {name_of(j): j for j in jobs}
    active = [ref for ref in result.status.get("active") or [] if ref.get("name") in by_name]
    for ref in result.status.get("active") or []:
        if ref.get("name") not in by_name:
            result.note(NORMAL, "MissingJob",
                                  f"Active job went missing: {ref.get('name')}")
    names = {ref.get("name") for ref in active}
    for job in jobs:
        outcome = finished(job)
        manual = (meta(job).get("annotations") or {}).get(INSTANTIATE) == "manual"
        if outcome is None and name_of(job) not in names and manual:
            result.note(WARNING, "UnexpectedJob", "Saw a job that the controller did not "
                                                  f"create or forgot: {name_of(job)}")
        elif outcome is None and name_of(job) not in names and not is_deleting(job):
            active.append(job_reference(job))
        elif outcome is not None and name_of(job) in names:
            active = [ref for ref in active if ref.get("name") != name_of(job)]
            result.note(NORMAL, "SawCompletedJob", f"Saw completed job: {name_of(job)}, "
                                  f"condition: {outcome}")
        if outcome == "Complete":
            _note_success(result.status, status(job).get("completionTime"))
    if active:
        result.status["active"] = active
    else:
        result.status.pop("active", None)


def _note_success(st: Obj, completed: str | None) -> None:
    when, last = parse_time(completed or ""), parse_time(st.get("lastSuccessfulTime") or "")
    if when is not None and (last is None or when > last):
        st["lastSuccessfulTime"] = rfc3339(when)


def _start_due_job(cronjob: Obj, schedule: cronschedule.Schedule, now: datetime,
                   result: Plan) -> None:
    deadline = spec(cronjob).get("startingDeadlineSeconds")
    earliest = parse_time(result.status.get("lastScheduleTime") or "") \
        or parse_time(meta(cronjob).get("creationTimestamp") or "") or now
    if deadline is not None:
        earliest = max(earliest, now - timedelta(seconds=int(deadline)))
    scheduled, missed = schedule.most_recent(earliest, now)
    if missed > cronschedule.MAX_MISSED:
        result.note(WARNING, "TooManyMissedTimes", "too many missed start times: "
                              f"{missed}. Set or decrease .spec.startingDeadlineSeconds or "
                              "check clock skew")
    if scheduled is None:
        return
    if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
        result.note(WARNING, "MissSchedule", "Missed scheduled time to start a job: "
                              f"{rfc3339(scheduled)}")
        return
    name = job_name(cronjob, scheduled)
    active = result.status.get("active") or []
    if any(ref.get("name") == name for ref in active):
        return  # already started (the status write may be what woke us)
    policy = spec(cronjob).get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active:
        result.note(NORMAL, "JobAlreadyActive", "Not starting job because prior "
                              "execution is running and concurrency policy is Forbid")
        return
    if policy == "Replace":
        result.delete += [str(ref.get("name")) for ref in active]
        result.status.pop("active", None)
    result.create = new_job(cronjob, scheduled)
    result.status["lastScheduleTime"] = rfc3339(scheduled)


def new_job(cronjob: Obj, scheduled: datetime) -> Obj:
    template = copy.deepcopy(spec(cronjob).get("jobTemplate") or {})
    job_meta = meta(template)
    labels = {**(job_meta.get("labels") or {}), CRONJOB_NAME_LABEL: name_of(cronjob)}
    annotations = {**(job_meta.get("annotations") or {}), SCHEDULED_AT: rfc3339(scheduled)}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(cronjob, scheduled),
                         "namespace": meta(cronjob).get("namespace"), "labels": labels,
                         "annotations": annotations,
                         "ownerReferences": [owner_reference(cronjob)]},
            "spec": spec(template)}


def job_reference(job: Obj) -> Obj:
    m = meta(job)
    return {"kind": "Job", "apiVersion": "batch/v1", "namespace": m.get("namespace"),
            "name": m.get("name"), "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion")}


def _beyond_history(cronjob: Obj, jobs: list[Obj]) -> list[str]:
    doomed: list[str] = []
    for outcome, limit_field, default in (("Complete", "successfulJobsHistoryLimit", 3),
                                          ("Failed", "failedJobsHistoryLimit", 1)):
        limit = spec(cronjob).get(limit_field)
        limit = default if limit is None else int(limit)
        ended = sorted((j for j in jobs if finished(j) == outcome and not is_deleting(j)),
                       key=lambda j: (status(j).get("startTime") or "",
                                      meta(j).get("creationTimestamp") or ""))
        doomed += [name_of(j) for j in ended[:max(len(ended) - limit, 0)]]
    return doomed


class CronJobController(Controller):
    name = "cronjob"

    def __init__(self, client: Client, informers: SharedInformers, recorder: EventRecorder,
                 *, clock: Clock | None = None) -> None:
        super().__init__(client, informers, recorder)
        self.clock = clock or RealClock()
        self.cronjobs = informers.get("CronJob")
        self.jobs = informers.get("Job")
        self.cronjobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.jobs.add_handler(self._job_changed, lambda old, new: self._job_changed(new),
                              self._job_changed)

    def _job_changed(self, job: Obj) -> None:
        ref = controller_ref(job)
        if ref and ref.get("kind") == "CronJob":
            self.enqueue_key(f"{meta(job).get('namespace')}/{ref.get('name')}")

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        cronjob = self.cronjobs.get(namespace, name)
        if cronjob is None:
            return
        jobs = [j for j in self.jobs.by_index(OWNER_UID, uid_of(cronjob))
                if (controller_ref(j) or {}).get("uid") == uid_of(cronjob)]
        result = plan(cronjob, jobs, self.clock.now())
        await self._apply(cronjob, result)
        if result.requeue_after is not None:
            self.requeue_after(key, result.requeue_after)

    async def _apply(self, cronjob: Obj, result: Plan) -> None:
        namespace = meta(cronjob).get("namespace")
        for job in result.delete:
            try:
                await self.client.delete("Job", job, namespace, propagation_policy="Background")
                self.emit(cronjob, NORMAL, "SuccessfulDelete", f"Deleted job {job}")
            except NotFound:
                pass
        if result.create is not None:
            try:
                created = await self.client.create(result.create, namespace)
                self.emit(cronjob, NORMAL, "SuccessfulCreate", f"Created job {name_of(created)}")
            except AlreadyExists:
                created = await self.client.get("Job", name_of(result.create), namespace)
            refs = result.status.setdefault("active", [])
            if not any(r.get("name") == name_of(created) for r in refs):
                refs.append(job_reference(created))
        for type_, reason, message in result.events:
            self.emit(cronjob, type_, reason, message)
        if result.status != status(cronjob):
            updated = copy.deepcopy(cronjob)
            updated["status"] = result.status
            await self.client.update_status(updated)
