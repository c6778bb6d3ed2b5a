"""Validation of Allocs, and of the Jobs that run as task arrays.

A task array runs its pod template's one container as bare processes inside an
Alloc's executor: anything the executor cannot honour for a task (a second
container, init containers, probes, volumes, lifecycle hooks, env from other
objects) is refused at create time with the field at fault, rather than
silently ignored.
"""

from __future__ import annotations

from corral.api.field_errors import FieldErrors
from corral.api.framework_validation import validate_alloc_tasks
from corral.api.kinds.alloc import Alloc
from corral.api.kinds.batch import Job
from corral.api.pod_validation import validate_quantities
from corral.indexset import IndexFormatError, IndexSet

RUN_AS = "corral.dev/run-as"
RUN_AS_TASKS = "tasks"
# A task array's indices live as ranges, so the master's cost does not grow with
# them; what bounds them is the agents' work and the status objects' size.
MAX_ARRAY_COMPLETIONS = 1_000_000
MAX_ARRAY_PARALLELISM = 100_000  # Kubernetes' bound for Indexed Jobs
MAX_SLOTS = 10_000  # tasks running at once in one Alloc


def is_task_array(job: Job) -> bool:
    return (job.metadata.annotations or {}).get(RUN_AS) == RUN_AS_TASKS


def validate_task_array(job: Job, errs: FieldErrors) -> None:
    annotations = job.metadata.annotations or {}
    run_as = annotations.get(RUN_AS)
    if run_as is None:
        return
    errs.one_of(f"metadata.annotations[{RUN_AS}]", run_as, (RUN_AS_TASKS,))
    if run_as != RUN_AS_TASKS:
        return
    spec = job.spec
    if spec.completion_mode != "Indexed":
        errs.invalid("spec.completionMode", spec.completion_mode,
                     f"must be Indexed when {RUN_AS} is {RUN_AS_TASKS}")
    errs.in_range("spec.completions", spec.completions, 0, MAX_ARRAY_COMPLETIONS)
    errs.in_range("spec.parallelism", spec.parallelism, 0, MAX_ARRAY_PARALLELISM)
    pod = spec.template.spec
    if len(pod.containers) != 1:
        errs.invalid("spec.template.spec.containers", len(pod.containers),
                     "a task array runs exactly one container per task")
    if pod.init_containers:
        errs.forbidden("spec.template.spec.initContainers",
                       "a task array's tasks cannot have init containers")
    if pod.volumes:
        errs.forbidden("spec.template.spec.volumes",
                       "a task array's tasks run without volumes")
    for i, container in enumerate(pod.containers):
        where = f"spec.template.spec.containers[{i}]"
        for name in container.probes():
            errs.forbidden(f"{where}.{name}", "a task array's tasks cannot have probes")
        if container.volume_mounts:
            errs.forbidden(f"{where}.volumeMounts", "a task array's tasks run without volumes")
        if container.lifecycle:
            errs.forbidden(f"{where}.lifecycle",
                           "a task array's tasks cannot have lifecycle hooks")
        for j, env in enumerate(container.env or ()):
            if env.value_from is not None:
                errs.forbidden(f"{where}.env[{j}].valueFrom",
                               "a task array's tasks take plain values")
        if container.env_from:
            errs.forbidden(f"{where}.envFrom", "a task array's tasks take plain values")
        if not (container.command or container.args):
            errs.required(f"{where}.command", "a task runs its command on the node")


def validate_alloc(alloc: Alloc, old: Alloc | None, errs: FieldErrors) -> None:
    spec = alloc.spec
    validate_quantities(spec.resources, "spec.resources", errs)
    errs.in_range("spec.slots", spec.slots, 1, MAX_SLOTS)
    errs.non_negative("spec.backoffLimitPerIndex", spec.backoff_limit_per_index)
    errs.positive("spec.logMaxBytes", spec.log_max_bytes)
    errs.one_of("spec.preemptionPolicy", spec.preemption_policy,
                ("PreemptLowerPriority", "Never"))
    if spec.task is not None:
        if not spec.task.command:
            errs.required("spec.task.command")
        validate_quantities(spec.task.resources, "spec.task.resources", errs)
    for path, text in (("spec.ranges", spec.ranges),
                       ("status.claimed", (alloc.status.claimed if alloc.status else None)),
                       ("status.completed", (alloc.status.completed if alloc.status else None)),
                       ("status.failedIndexes",
                        (alloc.status.failed_indexes if alloc.status else None))):
        try:
            IndexSet.parse(text)
        except IndexFormatError as err:
            errs.invalid(path, text, str(err))
    validate_alloc_tasks(alloc, errs)
    if old is not None and old.spec.node_name:
        errs.immutable("spec.nodeName", spec.node_name, old.spec.node_name)
