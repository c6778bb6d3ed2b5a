"""What an HPA scales and what it measures, both read through the API:

    scaleTargetRef {apiVersion, kind, name}
      ─► discovery of that group-version (GET /apis/{group}/{version}): the
         resource whose kind it is and that serves `<plural>/scale` — built-in
         Deployments, ReplicaSets, StatefulSets, ReplicationControllers, and
         custom resources whose CRD declares a scale subresource alike
         (Kubernetes' RESTMapper); kept a short while per group-version
      ─► GET/PUT .../<plural>/<name>/scale (autoscaling/v1 Scale: spec.replicas,
         status.replicas, status.selector)

    metrics.k8s.io PodMetrics of the selected pods ─► each pod's usage of one
      resource in milli-units, summed over its containers (or one container),
      with its timestamp and window (Kubernetes' resource metrics client)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from corral.api.errors import APIError, NotFound
from corral.api.quantity import milli_value
from corral.client.clock import Clock
from corral.client.http import Client
from corral.controllers.autoscaling.replicas import MetricError, PodMetric
from corral.objects import Obj, parse_time

DISCOVERY_TTL = 30.0  # seconds a group-version's resources are reused
METRICS_PATH = "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"


class UnknownKind(Exception):
    """No served resource of that kind has a scale subresource."""


@dataclass(frozen=True)
class ScaleTarget:
    path: str  # .../namespaces/{ns}/{plural}/{name}/scale
    resource: str  # "deployments.apps", as Kubernetes names it in messages


class ScaleTargets:
    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self._plurals: dict[str, tuple[float, dict[str, str]]] = {}  # gv → (at, kind → plural)

    async def resolve(self, namespace: str, ref: Obj) -> ScaleTarget:
        api_version = str(ref.get("apiVersion") or "")
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        group, _, version = api_version.rpartition("/")
        if not version:
            raise UnknownKind(f'invalid API version in scale target reference: "{api_version}"')
        plural = (await self._scalable(group, version)).get(kind)
        if plural is None:
            raise UnknownKind(f'no matches for kind "{kind}" in group "{group}"')
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        return ScaleTarget(f"{base}/namespaces/{namespace}/{plural}/{name}/scale",
                           f"{plural}.{group}" if group else plural)

    async def _scalable(self, group: str, version: str) -> dict[str, str]:
        gv = f"{group}/{version}" if group else version
        cached = self._plurals.get(gv)
        if cached is not None and self.clock.monotonic() - cached[0] < DISCOVERY_TTL:
            return cached[1]
        path = f"/apis/{gv}" if group else f"/api/{gv}"
        try:
            listed = (await self.client.raw("GET", path)).json()
        except NotFound:
            listed = {}
        names = {r.get("name") for r in listed.get("resources") or []}
        plurals = {str(r.get("kind")): str(r.get("name")) for r in listed.get("resources") or []
                   if "/" not in str(r.get("name")) and f"{r.get('name')}/scale" in names}
        self._plurals[gv] = (self.clock.monotonic(), plurals)
        return plurals

    async def get(self, target: ScaleTarget) -> Obj:
        data: Obj = (await self.client.raw("GET", target.path)).json()
        return data

    async def update(self, target: ScaleTarget, scale: Obj) -> Obj:
        data: Obj = (await self.client.raw("PUT", target.path, json_body=scale)).json()
        return data


async def pod_metrics(client: Client, namespace: str, selector: str, resource: str,
                      container: str = "") -> dict[str, PodMetric]:
    """GetResourceMetric: usage by pod name, in milli-units."""
    path = METRICS_PATH.format(namespace=namespace)
    try:
        listed = (await client.raw("GET", path, params={"labelSelector": selector})).json()
    except APIError as err:
        raise MetricError(f"unable to fetch metrics from resource metrics API: {err}") from None
    items = listed.get("items") or []
    if not items:
        raise MetricError("no metrics returned from resource metrics API")
    found: dict[str, PodMetric] = {}
    for item in items:
        value = _pod_usage(item, resource, container)
        when = parse_time(item.get("timestamp"))
        if value is not None and when is not None:
            name = str((item.get("metadata") or {}).get("name"))
            found[name] = PodMetric(value, when, _window(item.get("window")))
    return found


def _pod_usage(item: Obj, resource: str, container: str) -> int | None:
    """A pod's usage: every container's, or None when one lacks the resource
    (the pod then counts as missing); with ``container``, that one's."""
    containers = item.get("containers") or []
    if container:
        chosen = [c for c in containers if c.get("name") == container]
        if not chosen:
            return None
        containers = chosen
    if not containers:
        return None
    total = 0
    for c in containers:
        usage = (c.get("usage") or {}).get(resource)
        if usage is None:
            if container:
                raise MetricError(f"missing resource metric {resource} for container "
                                  f"{container} in pod {(item.get('metadata') or {}).get('name')}")
            return None
        total += milli_value(usage)
    return total


_DURATION = re.compile(r"^(\d+(?:\.\d*)?)(ms|s|m)$")


def _window(raw: object) -> timedelta:
    """A metrics window ("10s", "9.998s", "1m") as a duration; 0 if unreadable."""
    match = _DURATION.match(str(raw or ""))
    if match is None:
        return timedelta(0)
    number, unit = float(match.group(1)), match.group(2)
    return timedelta(seconds=number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit])
