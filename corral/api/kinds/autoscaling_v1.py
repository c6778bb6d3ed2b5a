"""autoscaling/v1 HorizontalPodAutoscaler: the older shape (one CPU target),
served by converting to and from the autoscaling/v2 corral stores
(corral/api/conversion.py). This model is what OpenAPI publishes for v1 (so
`kubectl explain --api-version=autoscaling/v1` and kubectl's validation find
the kind); requests are decoded as v2 after conversion.

The classes keep Kubernetes' names: OpenAPI names a schema after its class
(io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.autoscaling import CrossVersionObjectReference
from corral.api.kinds.base import Int32, Int64, KubeModel, Time
from corral.api.kinds.meta import KubeObject


class HorizontalPodAutoscalerSpec(KubeModel):
    scale_target_ref: CrossVersionObjectReference = Field(
        default_factory=CrossVersionObjectReference)
    min_replicas: Int32 | None = None
    max_replicas: Int32 = 0
    target_cpu_utilization_percentage: Int32 | None = Field(
        default=None, alias="targetCPUUtilizationPercentage")


class HorizontalPodAutoscalerStatus(KubeModel):
    observed_generation: Int64 | None = None
    last_scale_time: Time | None = None
    current_replicas: Int32 = 0
    desired_replicas: Int32 = 0
    current_cpu_utilization_percentage: Int32 | None = Field(
        default=None, alias="currentCPUUtilizationPercentage")


class HorizontalPodAutoscaler(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("autoscaling/v1",)
    spec: HorizontalPodAutoscalerSpec = Field(default_factory=HorizontalPodAutoscalerSpec)
    status: HorizontalPodAutoscalerStatus | None = None
