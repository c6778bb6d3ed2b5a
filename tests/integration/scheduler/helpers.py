"""API objects and waiting for the scheduler tests.

Nodes are created through the API with the allocatable and Ready condition an
agent would post: the scheduler sees exactly what it sees in production."""

from __future__ import annotations

from typing import TypeVar

from corral.api.quantity import cpu_millis
from corral.client.http import Client
from corral.objects import Obj
from tests import manifests

T = TypeVar("T")


def pod(name: str, cpu: str = "100m", memory: str = "64Mi", *, namespace: str = "default",
        priority_class: str | None = None, limits: bool = False,
        scheduler_name: str | None = None, extra_spec: Obj | None = None) -> Obj:
    resources: Obj = {"requests": {"cpu": cpu, "memory": memory}}
    if limits:
        resources["limits"] = {"cpu": cpu, "memory": memory}
    spec: Obj = {}
    if priority_class:
        spec["priorityClassName"] = priority_class
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    spec.update(extra_spec or {})
    return manifests.pod(name, namespace=namespace, containers=[manifests.container(
        name="app", image="busybox", resources=resources)], **spec)


async def node_of(client: Client, name: str, ns: str = "default") -> str:
    return str((await client.get("Pod", name, ns)).get("spec", {}).get("nodeName") or "")


async def events_for(client: Client, name: str, ns: str = "default",
                     reason: str | None = None) -> list[Obj]:
    selector = f"involvedObject.name={name}"
    if reason:
        selector += f",reason={reason}"
    return (await client.list("Event", ns, field_selector=selector)).items


def requested_cpu(pod_obj: Obj) -> int:
    return sum(cpu_millis(c.get("resources", {}).get("requests", {}).get("cpu", "0"))
               for c in pod_obj["spec"]["containers"])


def condition(pod_obj: Obj, kind: str = "PodScheduled") -> Obj:
    return next((c for c in pod_obj.get("status", {}).get("conditions") or ()
                 if c.get("type") == kind), {})
