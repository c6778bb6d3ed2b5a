"""The event table: LAST SEEN TYPE REASON OBJECT MESSAGE (wide adds SUBOBJECT
SOURCE FIRST SEEN COUNT NAME, interleaved as Kubernetes orders them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from corral.api.tables.age import age
from corral.api.tables.columns import Cell, Column, Object, Printer, name_of

COLUMNS = (
    Column("Last Seen", "The time at which the most recent occurrence of this event "
           "was recorded."),
    Column("Type", "Type of this event (Normal, Warning)."),
    Column("Reason", "This should be a short, machine understandable string that gives "
           "the reason for the transition into the object's current status."),
    Column("Object", "The object that this event is about."),
    Column("Subobject", "The field of the object the event is about.", priority=1),
    Column("Source", "The component reporting this event.", priority=1),
    Column("Message", "A human-readable description of the status of this operation."),
    Column("First Seen", "The time at which the event was first recorded.", priority=1),
    Column("Count", "The number of times this event has occurred.", priority=1),
    Column("Name", "Name must be unique within a namespace.", format="name", priority=1),
)


def event_cells(event: Object, now: datetime) -> list[Cell]:
    first_seen = age(event.get("firstTimestamp") or event.get("eventTime"), now)
    last_seen = age(event["lastTimestamp"], now) if event.get("lastTimestamp") else first_seen
    count = event.get("count") or 1  # a singleton event of the events API has no count
    series = event.get("series")
    if series:
        last_seen = age(series.get("lastObservedTime"), now)
        count = series.get("count") or count
    involved = event.get("involvedObject") or {}
    return [
        last_seen, event.get("type", ""), event.get("reason", ""), _target(involved),
        involved.get("fieldPath", ""), _source(event),
        str(event.get("message", "")).strip(), first_seen, int(count), name_of(event),
    ]


def _target(involved: dict[str, Any]) -> str:
    kind = str(involved.get("kind", "")).lower()
    return f"{kind}/{involved['name']}" if involved.get("name") else kind


def _source(event: Object) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    if not component:
        return "<unknown>"
    return f"{component}, {instance}" if instance else component


EVENTS = Printer(COLUMNS, event_cells)
