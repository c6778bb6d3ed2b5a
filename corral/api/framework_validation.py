"""Validation of Frameworks (corral.dev/v1), and of the Mesos tasks an Alloc holds.

A Framework is written by the master from a framework's FrameworkInfo, and may
be written by anyone with the right (kubectl apply, the dashboard): the same
rules hold for both, so a framework whose SUBSCRIBE would store something
invalid is refused with the field at fault.
"""

from __future__ import annotations

from corral.api.field_errors import FieldErrors
from corral.api.kinds.alloc import Alloc
from corral.api.kinds.framework import Framework
from corral.api.pod_validation import validate_quantities

# FrameworkInfo.Capability.Type values Mesos 1.11 knows.
CAPABILITIES = ("REVOCABLE_RESOURCES", "TASK_KILLING_STATE", "GPU_RESOURCES",
                "SHARED_RESOURCES", "PARTITION_AWARE", "MULTI_ROLE", "RESERVATION_REFINEMENT",
                "REGION_AWARE", "AGENT_OPERATION_FEEDBACK")
PHASES = ("Subscribed", "Disconnected", "Removed")
TASK_STATES = ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING",
               "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
               "TASK_DROPPED", "TASK_UNREACHABLE", "TASK_GONE", "TASK_GONE_BY_OPERATOR",
               "TASK_UNKNOWN")
MAX_FAILOVER_TIMEOUT = 365 * 24 * 3600.0  # a year: longer is a typo, not a plan
MAX_ROLES = 64
MAX_NAME = 1024
MAX_TASKS_PER_ALLOC = 10_000


def role_problems(role: str) -> list[str]:
    """Mesos' role name rules (hierarchical roles separated by "/")."""
    if not role:
        return ["must not be empty"]
    if role == "*":
        return []
    problems = []
    if len(role) > 255:
        problems.append("must be no more than 255 characters")
    if role.startswith("-"):
        problems.append("must not start with '-'")
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in role):
        problems.append("must not contain whitespace, control characters or backslashes")
    if any(part in ("", ".", "..") for part in role.split("/")):
        problems.append("each '/'-separated part must be non-empty and not '.' or '..'")
    return problems


def validate_framework(fw: Framework, old: Framework | None, errs: FieldErrors) -> None:
    spec = fw.spec
    if not spec.name:
        errs.required("spec.name", "FrameworkInfo.name")
    elif len(spec.name) > MAX_NAME:
        errs.too_long("spec.name", MAX_NAME)
    if spec.failover_timeout is not None and not (
            0 <= spec.failover_timeout <= MAX_FAILOVER_TIMEOUT):
        errs.invalid("spec.failoverTimeout", spec.failover_timeout,
                     f"must be between 0 and {MAX_FAILOVER_TIMEOUT:g} seconds")
    roles = spec.roles or []
    if len(roles) > MAX_ROLES:
        errs.invalid("spec.roles", len(roles), f"must have at most {MAX_ROLES} items")
    seen: set[str] = set()
    for i, role in enumerate(roles):
        errs.each(f"spec.roles[{i}]", role, role_problems(role))
        if role in seen:
            errs.duplicate(f"spec.roles[{i}]", role)
        seen.add(role)
    for i, cap in enumerate(spec.capabilities or []):
        errs.one_of(f"spec.capabilities[{i}]", cap, CAPABILITIES)
    if fw.status is not None:
        errs.one_of("status.phase", fw.status.phase, PHASES)


def validate_alloc_tasks(alloc: Alloc, errs: FieldErrors) -> None:
    """The Mesos tasks of an Alloc: unique ids, a command each, valid quantities."""
    tasks = alloc.spec.tasks or []
    if len(tasks) > MAX_TASKS_PER_ALLOC:
        errs.invalid("spec.tasks", len(tasks), f"must have at most {MAX_TASKS_PER_ALLOC} items")
    ids: set[str] = set()
    for i, task in enumerate(tasks):
        where = f"spec.tasks[{i}]"
        if not task.id:
            errs.required(f"{where}.id")
        elif task.id in ids:
            errs.duplicate(f"{where}.id", task.id)
        ids.add(task.id)
        if not task.command:
            errs.required(f"{where}.command", "a task runs its command on the node")
        validate_quantities(task.resources, f"{where}.resources", errs)
    for i, state in enumerate((alloc.status.tasks if alloc.status else None) or []):
        errs.one_of(f"status.tasks[{i}].state", state.state, TASK_STATES)
