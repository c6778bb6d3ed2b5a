"""The table of Allocs: where each runs and how far its tasks have got."""

from __future__ import annotations

from datetime import datetime

from corral.api.tables.columns import AGE, NAME, Cell, Column, Object, Printer, age_of, name_of
from corral.indexset import IndexFormatError, IndexSet
from corral.objects import meta

ALLOC_COLUMNS = (
    NAME,
    Column("Status", "The phase of the alloc."),
    Column("Node", "The node the alloc is bound to."),
    Column("Slots", "Tasks that may run at once.", "integer"),
    Column("Running", "Tasks running now.", "integer"),
    Column("Completed", "Tasks that succeeded here.", "integer"),
    AGE,
    Column("CPU", "The alloc's cpu.", priority=1),
    Column("Memory", "The alloc's memory.", priority=1),
    Column("Ranges", "The indices handed to this alloc.", priority=1),
)


def _count(text: str | None) -> int:
    try:
        return len(IndexSet.parse(text))
    except IndexFormatError:
        return 0


def alloc_cells(alloc: Object, now: datetime) -> list[Cell]:
    spec, status = alloc.get("spec") or {}, alloc.get("status") or {}
    resources = spec.get("resources") or {}
    phase = "Terminating" if (meta(alloc)).get("deletionTimestamp") else (
        status.get("phase") or "Pending")
    return [name_of(alloc), phase, spec.get("nodeName") or "<none>", int(spec.get("slots") or 1),
            int(status.get("running") or 0), _count(status.get("completed")), age_of(alloc, now),
            resources.get("cpu") or "", resources.get("memory") or "", spec.get("ranges") or ""]


ALLOCS = Printer(ALLOC_COLUMNS, alloc_cells)
