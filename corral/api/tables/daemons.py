"""Tables of StatefulSets and ControllerRevisions, with kubectl's columns
(DaemonSets print with the other pod controllers, in workloads)."""

from __future__ import annotations

from datetime import datetime

from corral.api.tables.columns import (
    AGE,
    CONTAINERS,
    IMAGES,
    NAME,
    Cell,
    Column,
    Object,
    Printer,
    age_of,
    name_of,
)
from corral.api.tables.workloads import template_cells
from corral.objects import meta

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
    refs = meta(obj).get("ownerReferences") or []
    owner = next((r for r in refs if r.get("controller")), None)
    controller = "<none>" if owner is None else \
        f"{owner.get('kind', '').lower()}.{owner.get('apiVersion', '').split('/')[0]}/" \
        f"{owner.get('name', '')}"
    return [name_of(obj), controller, int(obj.get("revision") or 0), age_of(obj, now)]


STATEFULSETS = Printer(STATEFULSET_COLUMNS, statefulset_cells)
CONTROLLERREVISIONS = Printer(REVISION_COLUMNS, revision_cells)
