"""corral.dev/v1 Alloc: Borg's alloc — resources reserved on one node, into which
an executor launches many short tasks.

The scheduler places an Alloc as it places a Pod (``corral.api.alloc_view``
gives the pod-shaped view it reads); the node's agent runs one executor per
Alloc, in a cgroup sized to ``spec.resources``, and starts ``spec.slots`` tasks
at a time in it. Two kinds of user fill it:

- task arrays (a Job run as tasks): ``spec.task`` is the command every index
  runs and ``spec.ranges`` the indices handed to this Alloc; the agent reports
  ``status.claimed`` (indices it may have started: never handed elsewhere),
  ``status.completed``, ``status.failedIndexes`` (out of retries) and the latest
  ``status.failedTasks`` in batches;
- Mesos frameworks (corral/offers/): an accepted offer becomes an Alloc owned by
  its Framework; ``spec.tasks`` are the tasks launched into it (a task the
  framework asked to kill gets ``kill: true``), and the agent reports each
  one's Mesos state in ``status.tasks``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.affinity import Affinity, Toleration
from corral.api.kinds.base import Int32, Int64, KubeModel, Opaque, Quantity
from corral.api.kinds.container import EnvVar
from corral.api.kinds.meta import Condition, KubeObject


class AllocTask(KubeModel):
    """What every task of a task array runs (from the Job's pod template)."""

    name: str | None = None  # the template's container
    command: list[str] = Field(default_factory=list)
    env: list[EnvVar] | None = None
    working_dir: str | None = None
    # Per task: what the executor books against the Alloc for each running task.
    resources: dict[str, Quantity] | None = None
    security_context: Opaque | None = None  # the container's: runAsUser, ...


class LaunchedTask(KubeModel):
    """One task a Mesos framework launched into the Alloc (TaskInfo, as run)."""

    id: str
    name: str | None = None
    command: list[str] = Field(default_factory=list)
    env: list[EnvVar] | None = None
    working_dir: str | None = None
    resources: dict[str, Quantity] | None = None
    group: str | None = None  # the LAUNCH_GROUP it came in (tasks of a group go together)
    kill: bool | None = None  # the framework asked to kill it
    kill_grace_seconds: float | None = None
    # Whom it runs as (CommandInfo.user, else FrameworkInfo.user), as the master
    # authorized it; none: the node's pod user.
    user: str | None = None


class TaskState(KubeModel):
    """A launched task's state as the agent last saw it (Mesos' TaskState)."""

    id: str
    state: str  # TASK_STARTING, TASK_RUNNING, TASK_FINISHED, TASK_FAILED, TASK_KILLED, ...
    exit_code: Int32 | None = None
    reason: str | None = None  # a Mesos TaskStatus.Reason
    message: str | None = None
    time: str | None = None  # RFC 3339, when the state was reached
    started: str | None = None  # RFC 3339, when its process started (it reached RUNNING)
    # Increases with each state of the task, across agent restarts (µs of the
    # wall clock at least): the master keeps the newest of its feed and the store.
    seq: Int64 | None = None


class AllocSpec(KubeModel):
    resources: dict[str, Quantity] | None = None  # the whole reservation
    slots: Int32 | None = None  # tasks running at once
    node_name: str | None = None  # set by binding
    scheduler_name: str | None = None
    priority_class_name: str | None = None
    priority: Int32 | None = None
    preemption_policy: str | None = None
    node_selector: dict[str, str] | None = None
    affinity: Affinity | None = None
    tolerations: list[Toleration] | None = None
    termination_grace_period_seconds: Int64 | None = None
    task: AllocTask | None = None
    ranges: str | None = None  # indices handed to this Alloc, "0-99,120"
    backoff_limit_per_index: Int32 | None = None  # retries of one index here
    log_max_bytes: Int64 | None = None  # per Alloc, across rotated files
    tasks: list[LaunchedTask] | None = None  # a Mesos framework's tasks
    # A task array's pod securityContext (runAsUser, runAsGroup, supplementalGroups,
    # fsGroup, runAsNonRoot), under the task's own as a container's is under its pod's.
    security_context: Opaque | None = None


class FailedTask(KubeModel):
    index: Int32
    exit_code: Int32
    reason: str | None = None
    failures: Int32 = 1  # attempts of this index that failed here


class AllocStatus(KubeModel):
    phase: str | None = None  # Pending, Running, Succeeded, Failed
    conditions: list[Condition] | None = None
    message: str | None = None
    reason: str | None = None
    nominated_node_name: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    start_time: str | None = None
    executor_pid: Int32 | None = None
    running: Int32 | None = None
    claimed: str | None = None
    completed: str | None = None
    failed_indexes: str | None = None  # out of retries here: failed for good
    failed_tasks: list[FailedTask] | None = None  # the latest failures, with exit codes
    failures: Int32 | None = None  # failed attempts in total, retried or not
    tasks: list[TaskState] | None = None  # a Mesos framework's tasks, as launched


class Alloc(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("corral.dev/v1",)
    spec: AllocSpec = Field(default_factory=AllocSpec)
    status: AllocStatus | None = None
