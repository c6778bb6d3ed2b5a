"""policy/v1: PodDisruptionBudget, how many of a set of pods voluntary
disruptions (evictions: drain, preemption by an operator) may take down at once."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, Int64, IntOrString, KubeModel, Time
from corral.api.kinds.meta import Condition, KubeObject, LabelSelector


class PodDisruptionBudgetSpec(KubeModel):
    min_available: IntOrString | None = None  # 2 or "50%"
    max_unavailable: IntOrString | None = None
    selector: LabelSelector | None = None
    unhealthy_pod_eviction_policy: str | None = None  # IfHealthyBudget, AlwaysAllow


class PodDisruptionBudgetStatus(KubeModel):
    observed_generation: Int64 | None = None
    disrupted_pods: dict[str, Time] | None = None
    disruptions_allowed: Int32 = 0
    current_healthy: Int32 = 0
    desired_healthy: Int32 = 0
    expected_pods: Int32 = 0
    conditions: list[Condition] | None = None


class PodDisruptionBudget(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("policy/v1",)
    spec: PodDisruptionBudgetSpec = Field(default_factory=PodDisruptionBudgetSpec)
    status: PodDisruptionBudgetStatus | None = None
