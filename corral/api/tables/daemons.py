"""Tables of the per-node and per-identity controllers, with kubectl's columns:
daemonsets, statefulsets and their controllerrevisions."""

from __future__ import annotations

from datetime import datetime

from corral.api.tables.columns import (
    AGE,
    CONTAINERS,
    IMAGES,
    NAME,
    SELECTOR,
    Cell,
    Column,
    Object,
    Printer,
    age_of,
    name_of,
)
from corral.api.tables.workloads import template_cells

DAEMONSET_COLUMNS = (
    NAME,
    Column("Desired", "The total number of nodes that should be running the daemon pod.",
           "integer"),
    Column("Current", "The number of nodes that are running at least 1 daemon pod.",
           "integer"),
    Column("Ready", "The number of nodes that should be running the daemon pod and have one "
           "or more of the daemon pod running and ready.", "integer"),
    Column("Up-to-date", "The total number of nodes that are running updated daemon pod",
           "integer"),
    Column("Available", "The number of nodes that should be running the daemon pod and have "
           "one or more of the daemon pod running and available.", "integer"),
    Column("Node Selector", "NodeSelector is a selector which must be true for the pod to fit "
           "on a node."),
    AGE, CONTAINERS, IMAGES, SELECTOR,
)


def daemonset_cells(obj: Object, now: datetime) -> list[Cell]:
    status = obj.get("status") or {}
    pod_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    node_selector = ",".join(f"{k}={v}" for k, v in (pod_spec.get("nodeSelector") or {}).items())
    return [
        name_of(obj), int(status.get("desiredNumberScheduled", 0)),
        int(status.get("currentNumberScheduled", 0)), int(status.get("numberReady", 0)),
        int(status.get("updatedNumberScheduled", 0)), int(status.get("numberAvailable", 0)),
        node_selector or "<none>", age_of(obj, now), *template_cells(obj),
    ]


STATEFULSET_COLUMNS = (
    NAME,
    Column("Ready", "Number of the pod with ready state"),
    AGE, CONTAINERS, IMAGES,
)


def statefulset_cells(obj: Object, now: datetime) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = 1 if spec.get("replicas") is None else int(spec["replicas"])
    return [name_of(obj), f"{int(status.get('readyReplicas') or 0)}/{desired}",
            age_of(obj, now), *template_cells(obj)[:2]]


REVISION_COLUMNS = (
    NAME,
    Column("Controller", "The controller that owns this revision."),
    Column("Revision", "The revision number.", "integer"),
    AGE,
)


def revision_cells(obj: Object, now: datetime) -> list[Cell]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    owner = next((r for r in refs if r.get("controller")), None)
    controller = "<none>" if owner is None else \
        f"{owner.get('kind', '').lower()}.{owner.get('apiVersion', '').split('/')[0]}/" \
        f"{owner.get('name', '')}"
    return [name_of(obj), controller, int(obj.get("revision") or 0), age_of(obj, now)]


DAEMONSETS = Printer(DAEMONSET_COLUMNS, daemonset_cells)
STATEFULSETS = Printer(STATEFULSET_COLUMNS, statefulset_cells)
CONTROLLERREVISIONS = Printer(REVISION_COLUMNS, revision_cells)
