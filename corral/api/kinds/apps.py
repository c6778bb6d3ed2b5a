"""apps/v1: Deployment and ReplicaSet."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import IntOrString, KubeModel
from corral.api.kinds.meta import Condition, KubeObject, LabelSelector
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
    replicas: int | None = None
    strategy: DeploymentStrategy | None = None
    min_ready_seconds: int | None = None
    revision_history_limit: int | None = None
    paused: bool | None = None
    progress_deadline_seconds: int | None = None


class DeploymentStatus(KubeModel):
    observed_generation: int | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    terminating_replicas: int | None = None
    conditions: list[Condition] | None = None
    collision_count: int | None = None


class Deployment(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)
    spec: DeploymentSpec = Field(default_factory=DeploymentSpec)
    status: DeploymentStatus | None = None


class ReplicaSetSpec(KubeModel):
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    replicas: int | None = None
    min_ready_seconds: int | None = None


class ReplicaSetStatus(KubeModel):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    terminating_replicas: int | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = None


class ReplicaSet(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)
    spec: ReplicaSetSpec = Field(default_factory=ReplicaSetSpec)
    status: ReplicaSetStatus | None = None
