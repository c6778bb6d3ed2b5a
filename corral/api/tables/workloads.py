"""Tables of the pod controllers: deployments, replicasets, replicationcontrollers,
daemonsets, jobs, cronjobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from corral.api.tables.age import duration_between, human_duration
from corral.api.tables.columns import (
    AGE,
    CONTAINERS,
    IMAGES,
    NAME,
    SELECTOR,
    Cell,
    Column,
    Object,
    Printer,
    age_of,
    name_of,
)
from corral.api.tables.selectors import format_selector
from corral.objects import parse_time, spec, status


def template_cells(obj: Object) -> list[Cell]:
    """CONTAINERS IMAGES SELECTOR, the wide columns every controller shares."""
    spec = obj.get("spec") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
        format_selector(spec.get("selector")),
    ]


def _replicas(obj: Object) -> tuple[dict[str, Any], dict[str, Any], int]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = spec.get("replicas")
    return spec, status, 1 if desired is None else int(desired)


DEPLOYMENT_COLUMNS = (
    NAME,
    Column("Ready", "Number of the pod with ready state"),
    Column("Up-to-date", "Total number of non-terminated pods targeted by this deployment "
           "that have the desired template spec."),
    Column("Available", "Total number of available pods (ready for at least "
           "minReadySeconds) targeted by this deployment."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)


def deployment_cells(obj: Object, now: datetime) -> list[Cell]:
    _, status, desired = _replicas(obj)
    return [
        name_of(obj), f"{status.get('readyReplicas', 0)}/{desired}",
        int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0)),
        age_of(obj, now), *template_cells(obj),
    ]


REPLICASET_COLUMNS = (
    NAME,
    Column("Desired", "Replicas is the number of desired replicas.", "integer"),
    Column("Current", "Replicas is the most recently observed number of replicas.", "integer"),
    Column("Ready", "The number of ready replicas for this replica set.", "integer"),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)


def replicaset_cells(obj: Object, now: datetime) -> list[Cell]:
    _, status, desired = _replicas(obj)
    return [
        name_of(obj), desired, int(status.get("replicas", 0)),
        int(status.get("readyReplicas", 0)), age_of(obj, now), *template_cells(obj),
    ]


def replication_controller_cells(obj: Object, now: datetime) -> list[Cell]:
    """As a ReplicaSet's; its selector is a plain label map."""
    spec = obj.get("spec") or {}
    as_rs = {**obj, "spec": {**spec, "selector": {"matchLabels": spec.get("selector") or {}}}}
    return replicaset_cells(as_rs, now)


DAEMONSET_COLUMNS = (
    NAME,
    Column("Desired", "The number of nodes that should be running the daemon pod.",
           "integer"),
    Column("Current", "The number of nodes running at least one daemon pod.", "integer"),
    Column("Ready", "The number of nodes with a ready daemon pod.", "integer"),
    Column("Up-to-date", "The number of nodes running the updated daemon pod.", "integer"),
    Column("Available", "The number of nodes with an available daemon pod.", "integer"),
    Column("Node Selector", "The node selector of the daemon pods."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)


def daemonset_cells(obj: Object, now: datetime) -> list[Cell]:
    status = obj.get("status") or {}
    template = spec((obj.get("spec") or {}).get("template") or {})
    selector = template.get("nodeSelector") or {}
    return [
        name_of(obj), int(status.get("desiredNumberScheduled", 0)),
        int(status.get("currentNumberScheduled", 0)), int(status.get("numberReady", 0)),
        int(status.get("updatedNumberScheduled", 0)), int(status.get("numberAvailable", 0)),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
        age_of(obj, now), *template_cells(obj),
    ]


JOB_COLUMNS = (
    NAME,
    Column("Status", "Status of the job."),
    Column("Completions", "The number of pods which reached phase Succeeded."),
    Column("Duration", "Time required to complete the job."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)

# The first true condition of these names the job's status, in this order;
# a deleted job without one is Terminating, any other is Running.
_JOB_FINAL = ("Complete", "Failed")
_JOB_PASSING = ("Suspended", "FailureTarget", "SuccessCriteriaMet")


def job_cells(obj: Object, now: datetime) -> list[Cell]:
    return [name_of(obj), job_status(obj), _completions(obj), _job_duration(obj, now),
            age_of(obj, now), *template_cells(obj)]


def job_status(obj: Object) -> str:
    true = {c.get("type") for c in status(obj).get("conditions") or []
            if c.get("status") == "True"}
    for kind in _JOB_FINAL:
        if kind in true:
            return kind
    if obj.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    for kind in _JOB_PASSING:
        if kind in true:
            return kind
    return "Running"


def _completions(obj: Object) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism") or 0
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def _job_duration(obj: Object, now: datetime) -> str:
    status = obj.get("status") or {}
    if status.get("completionTime"):
        return duration_between(status.get("startTime"), status["completionTime"])
    started = parse_time(status.get("startTime"))
    return "" if started is None else human_duration(now - started)


CRONJOB_COLUMNS = (
    NAME,
    Column("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column("Timezone", "The time zone name for the given schedule."),
    Column("Suspend", "This flag tells the controller to suspend subsequent executions.",
           "boolean"),
    Column("Active", "A list of pointers to currently running jobs.", "integer"),
    Column("Last Schedule", "Information when was the last time the job was successfully "
           "scheduled."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)


def cronjob_cells(obj: Object, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    last = parse_time(status.get("lastScheduleTime"))
    return [name_of(obj), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            bool(spec.get("suspend")), len(status.get("active") or []),
            "<none>" if last is None else human_duration(now - last), age_of(obj, now),
            *template_cells({"spec": job_spec})]


DEPLOYMENTS = Printer(DEPLOYMENT_COLUMNS, deployment_cells)
REPLICASETS = Printer(REPLICASET_COLUMNS, replicaset_cells)
REPLICATIONCONTROLLERS = Printer(REPLICASET_COLUMNS, replication_controller_cells)
DAEMONSETS = Printer(DAEMONSET_COLUMNS, daemonset_cells)
JOBS = Printer(JOB_COLUMNS, job_cells)
CRONJOBS = Printer(CRONJOB_COLUMNS, cronjob_cells)
