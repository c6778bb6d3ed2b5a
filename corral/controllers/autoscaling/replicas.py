"""How many replicas one resource metric asks for: Kubernetes' replica
calculator (pkg/controller/podautoscaler/replica_calculator.go), pure.

    pods of the target (by its scale's selector) + their metrics (milli-units)
      │ group: ignored   being deleted, or Failed
      │        unready   Pending; for cpu also not Ready yet, or Ready so recently
      │                  that no whole metric window has passed since (within the
      │                  5 min cpu initialization period), or never Ready after 30 s
      │        missing   no metric for the pod
      │        ready     the rest
      ▼
    ratio = usage / target over the ready pods with metrics
      (Utilization: Σusage·100/Σrequests, an int percent, over the target percent;
       AverageValue: mean usage over the target value)
      no unready or missing pods: |1 - ratio| ≤ tolerance → current replicas,
                                  else ceil(ratio × ready pods)
      otherwise, recompute the ratio with
        missing pods at 100% of their request (or the target, if higher) on a
          scale down, at 0 on a scale up;
        unready pods at 0 on a scale up (and left out otherwise)
      and keep the current replicas if that is within tolerance or turns the
      direction around; else ceil(new ratio × pods counted)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from corral.api.quantity import milli_value
from corral.controllers.pods import ready_condition
from corral.objects import Obj, is_deleting, meta, parse_time, spec, status

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = timedelta(minutes=5)
INITIAL_READINESS_DELAY = timedelta(seconds=30)


class MetricError(Exception):
    """The metric cannot be computed; the message is Kubernetes' wording."""


@dataclass(frozen=True)
class PodMetric:
    value: int  # milli-units (millicores, milli-bytes)
    timestamp: datetime
    window: timedelta


@dataclass(frozen=True)
class Timing:
    """The calculator's knobs (kube-controller-manager's --horizontal-pod-autoscaler-*)."""

    tolerance: float = TOLERANCE
    cpu_initialization_period: timedelta = CPU_INITIALIZATION_PERIOD
    initial_readiness_delay: timedelta = INITIAL_READINESS_DELAY


@dataclass
class Groups:
    ready: int = 0
    unready: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Proposal:
    replicas: int
    raw: int  # the average usage per pod, milli-units
    utilization: int | None = None  # percent of requests, for Utilization targets


def group_pods(pods: list[Obj], metrics: dict[str, PodMetric], resource: str, now: datetime,
               timing: Timing) -> Groups:
    groups = Groups()
    for pod in pods:
        name = str(meta(pod).get("name"))
        phase = status(pod).get("phase") or "Pending"
        if is_deleting(pod) or phase == "Failed":
            groups.ignored.add(name)
        elif phase == "Pending":
            groups.unready.add(name)
        elif name not in metrics:
            groups.missing.add(name)
        elif resource == "cpu" and _cpu_unready(pod, metrics[name], now, timing):
            groups.unready.add(name)
        else:
            groups.ready += 1
    return groups


def _cpu_unready(pod: Obj, metric: PodMetric, now: datetime, timing: Timing) -> bool:
    """A cpu sample from a pod starting up says little: a pod is counted once it
    is Ready and one whole metric window has passed since it became so."""
    condition = ready_condition(pod)
    started = parse_time(status(pod).get("startTime"))
    changed = parse_time((condition or {}).get("lastTransitionTime"))
    if condition is None or started is None or changed is None:
        return True
    ready = condition.get("status") == "True"
    if started + timing.cpu_initialization_period > now:
        return not ready or metric.timestamp < changed + metric.window
    return not ready and started + timing.initial_readiness_delay > changed


def pod_requests(pods: list[Obj], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request of ``resource`` (milli-units), summed over its containers
    (or the one named); a container without one is an error, as in Kubernetes."""
    requests: dict[str, int] = {}
    for pod in pods:
        total = 0
        pod_spec = spec(pod)
        sidecars = [c for c in pod_spec.get("initContainers") or []
                    if c.get("restartPolicy") == "Always"]
        for c in [*(pod_spec.get("containers") or []), *sidecars]:
            if container and c.get("name") != container:
                continue
            wanted = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if wanted is None:
                raise MetricError(f"missing request for {resource} in container "
                                  f"{c.get('name')} of Pod {meta(pod).get('name')}")
            total += milli_value(wanted)
        requests[str(meta(pod).get("name"))] = total
    return requests


def utilization_ratio(metrics: dict[str, int], requests: dict[str, int],
                      target: int) -> tuple[float, int, int]:
    """(ratio, utilization percent, average usage) over the pods that have both."""
    used = requested = counted = 0
    for name, value in metrics.items():
        if name in requests:
            used += value
            requested += requests[name]
            counted += 1
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target, utilization, used // counted


def usage_ratio(metrics: dict[str, int], target: int) -> tuple[float, int]:
    average = sum(metrics.values()) // len(metrics)
    return average / target, average


def _prepare(pods: list[Obj], metrics: dict[str, PodMetric], resource: str, now: datetime,
             timing: Timing) -> tuple[Groups, dict[str, int]]:
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now, timing)
    values = {name: m.value for name, m in metrics.items()
              if name not in groups.ignored and name not in groups.unready}
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    return groups, values


def resource_replicas(current: int, target_utilization: int, resource: str, pods: list[Obj],
                      metrics: dict[str, PodMetric], now: datetime, *, container: str = "",
                      timing: Timing = Timing()) -> Proposal:
    """GetResourceReplicas: a Utilization target (percent of the pods' requests)."""
    groups, values = _prepare(pods, metrics, resource, now, timing)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(values, requests, target_utilization)
    fallback = {name: requests[name] * max(100, target_utilization) // 100
                for name in groups.missing}

    def rerun(values: dict[str, int]) -> float:
        return utilization_ratio(values, requests, target_utilization)[0]

    replicas = _settle(current, ratio, groups, values, fallback, rerun, timing.tolerance)
    return Proposal(replicas, raw, utilization)


def raw_resource_replicas(current: int, target_usage: int, resource: str, pods: list[Obj],
                          metrics: dict[str, PodMetric], now: datetime, *,
                          timing: Timing = Timing()) -> Proposal:
    """GetRawResourceReplicas: an AverageValue target (milli-units per pod)."""
    groups, values = _prepare(pods, metrics, resource, now, timing)
    ratio, raw = usage_ratio(values, target_usage)
    fallback = dict.fromkeys(groups.missing, target_usage)

    def rerun(values: dict[str, int]) -> float:
        return usage_ratio(values, target_usage)[0]

    replicas = _settle(current, ratio, groups, values, fallback, rerun, timing.tolerance)
    return Proposal(replicas, raw)


def _settle(current: int, ratio: float, groups: Groups, values: dict[str, int],
            fallback: dict[str, int], rerun: Callable[[dict[str, int]], float],
            tolerance: float) -> int:
    """The replica count from a usage ratio, with the missing and unready pods
    accounted for as Kubernetes does (see the module docstring)."""
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return math.ceil(ratio * groups.ready)
    values = dict(values)
    if groups.missing and ratio < 1.0:
        values.update(fallback)
    elif groups.missing and ratio > 1.0:
        values.update(dict.fromkeys(groups.missing, 0))
    if scale_up_with_unready:
        values.update(dict.fromkeys(groups.unready, 0))
    new_ratio = rerun(values)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) \
            or (new_ratio < 1.0 < ratio):
        return current
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas

