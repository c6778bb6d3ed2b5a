"""apps/v1: Deployment, ReplicaSet, DaemonSet, StatefulSet and ControllerRevision."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, Int64, IntOrString, KubeModel, Opaque
from corral.api.kinds.meta import Condition, KubeObject, LabelSelector, ObjectMeta
from corral.api.kinds.pod import PodTemplateSpec


class RollingUpdateDeployment(KubeModel):
    max_surge: IntOrString | None = None  # 1 or "25%"
    max_unavailable: IntOrString | None = None


class DeploymentStrategy(KubeModel):
    type: str | None = None  # RollingUpdate, Recreate
    rolling_update: RollingUpdateDeployment | None = None


class DeploymentSpec(KubeModel):
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    replicas: Int32 | None = None
    strategy: DeploymentStrategy | None = None
    min_ready_seconds: Int32 | None = None
    revision_history_limit: Int32 | None = None
    paused: bool | None = None
    progress_deadline_seconds: Int32 | None = None


class DeploymentStatus(KubeModel):
    observed_generation: Int64 | None = None
    replicas: Int32 | None = None
    updated_replicas: Int32 | None = None
    ready_replicas: Int32 | None = None
    available_replicas: Int32 | None = None
    unavailable_replicas: Int32 | None = None
    terminating_replicas: Int32 | None = None
    conditions: list[Condition] | None = None
    collision_count: Int32 | None = None


class Deployment(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)
    spec: DeploymentSpec = Field(default_factory=DeploymentSpec)
    status: DeploymentStatus | None = None


class ReplicaSetSpec(KubeModel):
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    replicas: Int32 | None = None
    min_ready_seconds: Int32 | None = None


class ReplicaSetStatus(KubeModel):
    replicas: Int32 = 0
    fully_labeled_replicas: Int32 | None = None
    ready_replicas: Int32 | None = None
    available_replicas: Int32 | None = None
    terminating_replicas: Int32 | None = None
    observed_generation: Int64 | None = None
    conditions: list[Condition] | None = None


class ReplicaSet(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)
    spec: ReplicaSetSpec = Field(default_factory=ReplicaSetSpec)
    status: ReplicaSetStatus | None = None


class RollingUpdateDaemonSet(KubeModel):
    max_unavailable: IntOrString | None = None  # 1 or "10%"
    max_surge: IntOrString | None = None


class DaemonSetUpdateStrategy(KubeModel):
    type: str | None = None  # RollingUpdate, OnDelete
    rolling_update: RollingUpdateDaemonSet | None = None


class DaemonSetSpec(KubeModel):
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    update_strategy: DaemonSetUpdateStrategy | None = None
    min_ready_seconds: Int32 | None = None
    revision_history_limit: Int32 | None = None


class DaemonSetStatus(KubeModel):
    current_number_scheduled: Int32 = 0
    number_misscheduled: Int32 = 0
    desired_number_scheduled: Int32 = 0
    number_ready: Int32 = 0
    observed_generation: Int64 | None = None
    updated_number_scheduled: Int32 | None = None
    number_available: Int32 | None = None
    number_unavailable: Int32 | None = None
    collision_count: Int32 | None = None
    conditions: list[Condition] | None = None


class DaemonSet(KubeObject):
    """One pod on every node that fits (corral/controllers/daemonset.py)."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)
    spec: DaemonSetSpec = Field(default_factory=DaemonSetSpec)
    status: DaemonSetStatus | None = None


class RollingUpdateStatefulSetStrategy(KubeModel):
    partition: Int32 | None = None
    max_unavailable: IntOrString | None = None


class StatefulSetUpdateStrategy(KubeModel):
    type: str | None = None  # RollingUpdate, OnDelete
    rolling_update: RollingUpdateStatefulSetStrategy | None = None


class PersistentVolumeClaimTemplate(KubeModel):
    """A volumeClaimTemplates entry: only its name (the volume a container
    mounts) means something to a process runtime; the rest is kept as written."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: Opaque | None = None


class StatefulSetPersistentVolumeClaimRetentionPolicy(KubeModel):
    when_deleted: str | None = None  # Retain, Delete
    when_scaled: str | None = None


class StatefulSetOrdinals(KubeModel):
    start: Int32 | None = None


class StatefulSetSpec(KubeModel):
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    replicas: Int32 | None = None
    service_name: str | None = None
    pod_management_policy: str | None = None  # OrderedReady, Parallel
    update_strategy: StatefulSetUpdateStrategy | None = None
    volume_claim_templates: list[PersistentVolumeClaimTemplate] | None = None
    revision_history_limit: Int32 | None = None
    min_ready_seconds: Int32 | None = None
    persistent_volume_claim_retention_policy: (
        StatefulSetPersistentVolumeClaimRetentionPolicy | None) = None
    ordinals: StatefulSetOrdinals | None = None


class StatefulSetStatus(KubeModel):
    replicas: Int32 = 0
    observed_generation: Int64 | None = None
    ready_replicas: Int32 | None = None
    current_replicas: Int32 | None = None
    updated_replicas: Int32 | None = None
    available_replicas: Int32 | None = None
    current_revision: str | None = None
    update_revision: str | None = None
    collision_count: Int32 | None = None
    conditions: list[Condition] | None = None


class StatefulSet(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)
    spec: StatefulSetSpec = Field(default_factory=StatefulSetSpec)
    status: StatefulSetStatus | None = None


class ControllerRevision(KubeObject):
    """One recorded pod template of a DaemonSet or StatefulSet: ``data`` holds
    the patch that restores it, ``revision`` its place in the history."""

    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)
    data: Opaque | None = None
    revision: Int64 = 0
