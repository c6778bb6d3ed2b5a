"""A pod's effective requests or limits, as Kubernetes sums them
(component-helpers' resource.PodRequests / PodLimits):

    containers' sum + restartable init containers (sidecars), or, if larger,
    for each resource the peak while an init container runs (it and the
    sidecars started before it); then plus the pod's overhead

One home for the scheduler (amounts in its units, ints) and the quota
admission (Decimal quantities): what a pod is charged must be what it is
placed by. Each caller says how to read one container's amounts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

N = TypeVar("N", int, Decimal)


def pod_amounts(spec: Mapping[str, Any],
                container_amounts: Callable[[Mapping[str, Any]], dict[str, N]],
                overhead: dict[str, N]) -> dict[str, N]:
    """Resource name → the pod's amount, from ``container_amounts`` of each
    container and the already-read ``overhead``."""
    total: dict[str, N] = {}
    for container in spec.get("containers") or ():
        _add(total, container_amounts(container))
    sidecars: dict[str, N] = {}
    peak: dict[str, N] = {}
    for container in spec.get("initContainers") or ():
        amounts = container_amounts(container)
        if container.get("restartPolicy") == "Always":
            _add(sidecars, amounts)
            continue
        running = dict(sidecars)
        _add(running, amounts)
        _raise_to(peak, running)
    _add(total, sidecars)
    _raise_to(total, peak)
    _add(total, overhead)
    return total


def _add(into: dict[str, N], amounts: Mapping[str, N]) -> None:
    for name, amount in amounts.items():
        into[name] = into[name] + amount if name in into else amount


def _raise_to(into: dict[str, N], amounts: Mapping[str, N]) -> None:
    for name, amount in amounts.items():
        into[name] = max(into[name], amount) if name in into else amount
