"""autoscaling/v2: HorizontalPodAutoscaler, which sets the replicas of a scalable
object (through its scale subresource) from the metrics of the pods it selects.

This is the stored version; autoscaling/v1 is served by converting to and from
it (corral/api/conversion/autoscaling.py), as kube-apiserver does.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, Int64, KubeModel, Opaque, Quantity, Time
from corral.api.kinds.meta import KubeObject, LabelSelector

METRIC_SOURCE_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
TARGET_TYPES = ("Utilization", "Value", "AverageValue")
POLICY_TYPES = ("Percent", "Pods")
SELECT_POLICIES = ("Disabled", "Max", "Min")


class CrossVersionObjectReference(KubeModel):
    kind: str = ""
    name: str = ""
    api_version: str | None = None


class MetricTarget(KubeModel):
    type: str = ""
    value: Quantity | None = None
    average_value: Quantity | None = None
    average_utilization: Int32 | None = None


class MetricIdentifier(KubeModel):
    name: str = ""
    selector: LabelSelector | None = None


class ResourceMetricSource(KubeModel):
    name: str = ""
    target: MetricTarget = Field(default_factory=MetricTarget)


class ContainerResourceMetricSource(ResourceMetricSource):
    """A Resource source narrowed to one container of each pod."""
    container: str = ""


class PodsMetricSource(KubeModel):
    metric: MetricIdentifier = Field(default_factory=MetricIdentifier)
    target: MetricTarget = Field(default_factory=MetricTarget)


class ObjectMetricSource(KubeModel):
    described_object: CrossVersionObjectReference = Field(
        default_factory=CrossVersionObjectReference)
    target: MetricTarget = Field(default_factory=MetricTarget)
    metric: MetricIdentifier = Field(default_factory=MetricIdentifier)


class ExternalMetricSource(KubeModel):
    metric: MetricIdentifier = Field(default_factory=MetricIdentifier)
    target: MetricTarget = Field(default_factory=MetricTarget)


class MetricSpec(KubeModel):
    type: str = ""
    object: ObjectMetricSource | None = None
    pods: PodsMetricSource | None = None
    resource: ResourceMetricSource | None = None
    container_resource: ContainerResourceMetricSource | None = None
    external: ExternalMetricSource | None = None


class HPAScalingPolicy(KubeModel):
    type: str = ""
    value: Int32 = 0
    period_seconds: Int32 = 0


class HPAScalingRules(KubeModel):
    stabilization_window_seconds: Int32 | None = None
    select_policy: str | None = None
    policies: list[HPAScalingPolicy] | None = None


class HorizontalPodAutoscalerBehavior(KubeModel):
    scale_up: HPAScalingRules | None = None
    scale_down: HPAScalingRules | None = None


class HorizontalPodAutoscalerSpec(KubeModel):
    scale_target_ref: CrossVersionObjectReference = Field(
        default_factory=CrossVersionObjectReference)
    min_replicas: Int32 | None = None
    max_replicas: Int32 = 0
    metrics: list[MetricSpec] | None = None
    behavior: HorizontalPodAutoscalerBehavior | None = None


class MetricValueStatus(KubeModel):
    value: Quantity | None = None
    average_value: Quantity | None = None
    average_utilization: Int32 | None = None


class ResourceMetricStatus(KubeModel):
    name: str = ""
    current: MetricValueStatus = Field(default_factory=MetricValueStatus)


class ContainerResourceMetricStatus(ResourceMetricStatus):
    container: str = ""


class MetricStatus(KubeModel):
    type: str = ""
    resource: ResourceMetricStatus | None = None
    container_resource: ContainerResourceMetricStatus | None = None
    # Pods, Object and External statuses are kept as written: corral has no
    # custom or external metrics API that would fill them.
    pods: Opaque | None = None
    object: Opaque | None = None
    external: Opaque | None = None


class HorizontalPodAutoscalerCondition(KubeModel):
    type: str
    status: str
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class HorizontalPodAutoscalerStatus(KubeModel):
    observed_generation: Int64 | None = None
    last_scale_time: Time | None = None
    current_replicas: Int32 = 0
    desired_replicas: Int32 = 0
    current_metrics: list[MetricStatus] | None = None
    conditions: list[HorizontalPodAutoscalerCondition] | None = None


class HorizontalPodAutoscaler(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("autoscaling/v2",)
    spec: HorizontalPodAutoscalerSpec = Field(default_factory=HorizontalPodAutoscalerSpec)
    status: HorizontalPodAutoscalerStatus | None = None
