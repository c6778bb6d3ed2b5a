"""The replica count all of an HPA's metrics ask for (computeReplicasForMetrics
in Kubernetes' horizontal.go): each metric proposes a count, the highest wins.

    Resource / ContainerResource, Utilization  → replicas.resource_replicas
    Resource / ContainerResource, AverageValue → replicas.raw_resource_replicas
    Pods, Object, External                      → fail: corral serves no custom or
                                                  external metrics API

A metric that fails leaves an empty status in its slot and a Failure (its Event
and the ScalingActive condition it would set). When every metric fails, or one
fails and the others would scale down, there is no count (-1): scaling on part
of the picture may only go up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from corral.api.quantity import format_milli, milli_value
from corral.controllers.autoscaling.replicas import (
    MetricError,
    PodMetric,
    Proposal,
    Timing,
    raw_resource_replicas,
    resource_replicas,
)
from corral.objects import Obj

# (resource, container) → usage by pod name: the metrics API, read for one metric.
Fetch = Callable[[str, str], Awaitable[dict[str, PodMetric]]]
_NO_CUSTOM = "no custom metrics API (custom.metrics.k8s.io) is served by corral"
_NO_EXTERNAL = "no external metrics API (external.metrics.k8s.io) is served by corral"


@dataclass(frozen=True)
class Failure:
    reason: str  # FailedGetResourceMetric, ... (the Event's and the condition's)
    message: str  # the Event's message

    @property
    def condition_message(self) -> str:
        return f"the HPA was unable to compute the replica count: {self.message}"


@dataclass
class Computed:
    replicas: int  # -1: no count to act on
    metric: str  # which metric gave it ("cpu resource utilization (percentage of request)")
    statuses: list[Obj]
    error: str | None = None  # the error to report even when a count was found
    failures: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class Inputs:
    current: int  # the scale's spec.replicas
    pods: list[Obj]  # the pods its selector matches
    fetch: Fetch
    now: datetime
    timing: Timing


async def compute(metrics: list[Obj], inputs: Inputs) -> Computed:
    result = Computed(0, "", [])
    errors: list[str] = []
    for metric in metrics:
        try:
            replicas, name, status = await _one(metric, inputs)
        except _Failed as failed:
            result.failures.append(failed.failure)
            errors.append(failed.wrapped)
            result.statuses.append({"type": ""})
            continue
        result.statuses.append(status)
        if result.replicas == 0 or replicas > result.replicas:
            result.replicas, result.metric = replicas, name
    if errors:
        result.error = (f"invalid metrics ({len(errors)} invalid out of {len(metrics)}), "
                        f"first error is: {errors[0]}")
    if len(errors) >= len(metrics) or (errors and result.replicas < inputs.current):
        result.replicas, result.metric = -1, ""
    return result


class _Failed(Exception):
    def __init__(self, failure: Failure, wrapped: str) -> None:
        super().__init__(wrapped)
        self.failure = failure
        self.wrapped = wrapped


async def _one(metric: Obj, inputs: Inputs) -> tuple[int, str, Obj]:
    kind = metric.get("type")
    if kind in ("Resource", "ContainerResource"):
        return await _resource(metric, inputs)
    if kind == "Pods":
        name = ((metric.get("pods") or {}).get("metric") or {}).get("name", "")
        raise _unavailable("FailedGetPodsMetric", "pods",
                           f"unable to get metric {name}: {_NO_CUSTOM}")
    if kind == "Object":
        name = ((metric.get("object") or {}).get("metric") or {}).get("name", "")
        raise _unavailable("FailedGetObjectMetric", "object",
                           f"unable to get metric {name}: {_NO_CUSTOM}")
    if kind == "External":
        name = ((metric.get("external") or {}).get("metric") or {}).get("name", "")
        raise _unavailable("FailedGetExternalMetric", "external",
                           f"unable to get external metric {name}: {_NO_EXTERNAL}")
    message = f'unknown metric source type "{kind}"'
    raise _Failed(Failure("InvalidMetricSourceType", message), message)


def _unavailable(reason: str, kind: str, message: str) -> _Failed:
    return _Failed(Failure(reason, message), f"failed to get {kind} metric value: {message}")


async def _resource(metric: Obj, inputs: Inputs) -> tuple[int, str, Obj]:
    container_kind = metric.get("type") == "ContainerResource"
    field_name = "containerResource" if container_kind else "resource"
    source: dict[str, Any] = metric.get(field_name) or {}
    resource, container = str(source.get("name", "")), str(source.get("container", ""))
    target = source.get("target") or {}
    reason = "FailedGetContainerResourceMetric" if container_kind else "FailedGetResourceMetric"
    by_value = target.get("averageValue") is not None
    try:
        proposal = await _propose(resource, container, target, inputs)
    except MetricError as err:
        what = "usage" if by_value else "utilization"
        message = f"failed to get {resource} {what}: {err}"
        kind = "container resource" if container_kind else "resource"
        raise _Failed(Failure(reason, message),
                      f"failed to get {resource} {kind} metric value: {message}") from None
    current: Obj = {"averageValue": format_milli(proposal.raw)}
    if proposal.utilization is not None:
        current["averageUtilization"] = proposal.utilization
    status_source: Obj = {"name": resource, "current": current}
    if container_kind:
        status_source["container"] = container
    if by_value:
        name = f"{resource} resource"
    else:
        name = f"{resource} {'container ' if container_kind else ''}resource utilization " \
               "(percentage of request)"
    return proposal.replicas, name, {"type": metric.get("type"), field_name: status_source}


async def _propose(resource: str, container: str, target: Obj, inputs: Inputs) -> Proposal:
    try:
        metrics = await inputs.fetch(resource, container)
    except MetricError as err:
        raise MetricError(f"unable to get metrics for resource {resource}: {err}") from None
    if target.get("averageValue") is not None:
        return raw_resource_replicas(inputs.current, milli_value(target["averageValue"]),
                                     resource, inputs.pods, metrics, inputs.now,
                                     timing=inputs.timing)
    utilization = target.get("averageUtilization")
    if utilization is None:
        raise MetricError("invalid resource metric source: neither an average utilization "
                          "target nor an average value (usage) target was set")
    return resource_replicas(inputs.current, int(utilization), resource, inputs.pods, metrics,
                             inputs.now, container=container, timing=inputs.timing)
