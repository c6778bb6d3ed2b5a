"""Server-side printing: meta.k8s.io/v1 Table responses for `kubectl get`.

kubectl asks for a Table in its Accept header and prints the cells as sent, so
the server decides the columns and formats every cell (AGE as "5m"). Each row
carries the object (by default its PartialObjectMetadata), which kubectl needs
for -A and --show-labels.

    to_table(resource, objects)   a Table of any number of objects
    table_row_event(resource, obj) a watch event whose object is a one-row Table

One printer per kind, in modules by kind family: pods, nodes, workloads
(deployments, replicasets, jobs), services (services, endpoints, endpointslices), events,
config (configmaps, secrets), cluster (namespaces, leases, priorityclasses,
resourcequotas, limitranges), allocs, frameworks, policy (poddisruptionbudgets), autoscaling
(horizontalpodautoscalers), daemons (statefulsets, controllerrevisions); custom resources print
their CRD's additionalPrinterColumns (custom). A kind without one gets NAME and AGE.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from corral.api.resources import Resource
from corral.api.tables.age import human_duration
from corral.api.tables.allocs import ALLOCS
from corral.api.tables.autoscaling import HPAS
from corral.api.tables.certificates import CSRS
from corral.api.tables.cluster import (
    LEASES,
    LIMITRANGES,
    NAMESPACES,
    PRIORITYCLASSES,
    RESOURCEQUOTAS,
)
from corral.api.tables.columns import DEFAULT, Column, Object, Printer
from corral.api.tables.config import CONFIGMAPS, SECRETS, SERVICEACCOUNTS
from corral.api.tables.custom import CRDS, custom_printer
from corral.api.tables.daemons import CONTROLLERREVISIONS, STATEFULSETS
from corral.api.tables.events import EVENTS
from corral.api.tables.frameworks import FRAMEWORKS
from corral.api.tables.nodes import NODES
from corral.api.tables.pods import PODS
from corral.api.tables.policy import PDBS
from corral.api.tables.services import ENDPOINT_SLICES, ENDPOINTS, SERVICES
from corral.api.tables.workloads import (
    CRONJOBS,
    DAEMONSETS,
    DEPLOYMENTS,
    JOBS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
)

__all__ = ["PRINTERS", "Column", "Printer", "human_duration", "printer_for", "table_row_event",
           "to_table", "wants_table"]

PRINTERS: dict[str, Printer] = {
    "Pod": PODS, "Node": NODES, "Deployment": DEPLOYMENTS, "ReplicaSet": REPLICASETS,
    "Job": JOBS, "Service": SERVICES, "Endpoints": ENDPOINTS, "Namespace": NAMESPACES,
    "Event": EVENTS, "ConfigMap": CONFIGMAPS, "Secret": SECRETS, "Lease": LEASES,
    "ServiceAccount": SERVICEACCOUNTS,
    "PriorityClass": PRIORITYCLASSES, "ResourceQuota": RESOURCEQUOTAS, "LimitRange": LIMITRANGES, "Alloc": ALLOCS,
    "Framework": FRAMEWORKS, "PodDisruptionBudget": PDBS, "CustomResourceDefinition": CRDS, "CronJob": CRONJOBS,
    "ReplicationController": REPLICATIONCONTROLLERS, "DaemonSet": DAEMONSETS,
    "StatefulSet": STATEFULSETS, "ControllerRevision": CONTROLLERREVISIONS,
    "HorizontalPodAutoscaler": HPAS,
    "CertificateSigningRequest": CSRS, "EndpointSlice": ENDPOINT_SLICES,
}

INCLUDE_OBJECT = ("None", "Metadata", "Object")


def printer_for(resource: Resource) -> Printer:
    if resource.custom is not None:
        return custom_printer(resource)
    return PRINTERS.get(resource.kind, DEFAULT)


def wants_table(accept_header: str) -> bool:
    """Whether the Accept header asks for a meta.k8s.io/v1 Table (in JSON)."""
    for media_range in accept_header.split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        fields = dict(p.partition("=")[::2] for p in params)
        if (media_type == "application/json" and fields.get("as") == "Table"
                and fields.get("g") == "meta.k8s.io" and fields.get("v") == "v1"):
            return True
    return False


def to_table(resource: Resource, objects: list[dict[str, Any]], *,
             include_object: str = "Metadata", now: datetime | None = None) -> dict[str, Any]:
    """A Table of the objects, with every column (kubectl hides priority-1
    columns unless -o wide). include_object is Kubernetes' includeObject:
    None, Metadata (PartialObjectMetadata) or Object (the whole object)."""
    if include_object not in INCLUDE_OBJECT:
        raise ValueError(f"includeObject must be one of {INCLUDE_OBJECT}, not {include_object!r}")
    printer = printer_for(resource)
    moment = now or datetime.now(UTC)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [c.definition() for c in printer.columns],
        "rows": [_row(printer, obj, include_object, moment) for obj in objects],
    }


def _row(printer: Printer, obj: Object, include_object: str, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": printer.cells(obj, now)}
    conditions = printer.conditions(obj)
    if conditions:
        row["conditions"] = conditions
    if include_object == "Metadata":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                         "metadata": obj.get("metadata", {})}
    elif include_object == "Object":
        row["object"] = obj
    return row


def table_row_event(resource: Resource, obj: dict[str, Any], event_type: str = "ADDED", *,
                    include_object: str = "Metadata", with_columns: bool = False,
                    now: datetime | None = None) -> dict[str, Any]:
    """A watch event {"type", "object"} whose object is a one-row Table carrying
    the object's resourceVersion. Column definitions are sent only when asked
    (kubectl takes them from the first event and needs them nowhere else)."""
    table = to_table(resource, [obj], include_object=include_object, now=now)
    table["metadata"] = {"resourceVersion": obj.get("metadata", {}).get("resourceVersion", "")}
    if not with_columns:
        del table["columnDefinitions"]
    return {"type": event_type, "object": table}
