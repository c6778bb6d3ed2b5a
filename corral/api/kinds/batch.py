"""batch/v1: Job, a batch of pods run to completion; CronJob, Jobs made on a schedule."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, Int64, KubeModel, Opaque, Time
from corral.api.kinds.meta import Condition, KubeObject, LabelSelector, ObjectMeta
from corral.api.kinds.pod import PodTemplateSpec


class PodFailurePolicyOnExitCodesRequirement(KubeModel):
    container_name: str | None = None
    operator: str = ""  # In, NotIn
    values: list[Int32] = Field(default_factory=list)


class PodFailurePolicyOnPodConditionsPattern(KubeModel):
    type: str = ""
    status: str | None = None  # True (the default), False, Unknown


class PodFailurePolicyRule(KubeModel):
    action: str = ""  # FailJob, Ignore, Count, FailIndex
    on_exit_codes: PodFailurePolicyOnExitCodesRequirement | None = None
    on_pod_conditions: list[PodFailurePolicyOnPodConditionsPattern] | None = None


class PodFailurePolicy(KubeModel):
    """What a failed pod (restartPolicy Never) does to its Job, by the first rule
    its exit codes or conditions match (corral/controllers/job_failure_policy.py)."""

    rules: list[PodFailurePolicyRule] = Field(default_factory=list)


class JobSpec(KubeModel):
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    parallelism: Int32 | None = None
    completions: Int32 | None = None
    completion_mode: str | None = None  # NonIndexed, Indexed
    backoff_limit: Int32 | None = None
    backoff_limit_per_index: Int32 | None = None
    max_failed_indexes: Int32 | None = None
    active_deadline_seconds: Int64 | None = None
    ttl_seconds_after_finished: Int32 | None = None
    suspend: bool | None = None
    selector: LabelSelector | None = None
    manual_selector: bool | None = None
    pod_failure_policy: PodFailurePolicy | None = None
    pod_replacement_policy: str | None = None
    success_policy: Opaque | None = None
    managed_by: str | None = None


class UncountedTerminatedPods(KubeModel):
    succeeded: list[str] | None = None
    failed: list[str] | None = None


class TaskArrayStatus(KubeModel):
    """corral extension: a Job run as tasks (annotation corral.dev/run-as: tasks)
    keeps here what its removed Allocs can no longer report. While an Alloc is
    being removed its uid sits in uncountedTerminatedPods.failed (Kubernetes'
    own two-step protocol, applied to Allocs), so no failure is counted twice."""

    removed_failures: Int32 | None = None  # failed attempts in Allocs already removed
    allocs: Int32 | None = None  # Allocs the Job has now
    # Removed Allocs → the node that keeps their task logs (the newest few).
    removed: dict[str, str] | None = None


class JobStatus(KubeModel):
    active: Int32 | None = None
    succeeded: Int32 | None = None
    failed: Int32 | None = None
    terminating: Int32 | None = None
    ready: Int32 | None = None
    start_time: Time | None = None
    completion_time: Time | None = None
    conditions: list[Condition] | None = None
    completed_indexes: str | None = None
    failed_indexes: str | None = None
    uncounted_terminated_pods: UncountedTerminatedPods | None = None
    task_array: TaskArrayStatus | None = None  # corral extension, see TaskArrayStatus


class Job(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("batch/v1",)
    spec: JobSpec = Field(default_factory=JobSpec)
    status: JobStatus | None = None


class JobTemplateSpec(KubeModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec = Field(default_factory=JobSpec)


class CronJobSpec(KubeModel):
    schedule: str = ""
    time_zone: str | None = None
    starting_deadline_seconds: Int64 | None = None
    concurrency_policy: str | None = None  # Allow, Forbid, Replace
    suspend: bool | None = None
    job_template: JobTemplateSpec = Field(default_factory=JobTemplateSpec)
    successful_jobs_history_limit: Int32 | None = None
    failed_jobs_history_limit: Int32 | None = None


class CronJobStatus(KubeModel):
    active: list[Opaque] | None = None  # ObjectReferences to running Jobs
    last_schedule_time: Time | None = None
    last_successful_time: Time | None = None


class CronJob(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("batch/v1",)
    spec: CronJobSpec = Field(default_factory=CronJobSpec)
    status: CronJobStatus | None = None
