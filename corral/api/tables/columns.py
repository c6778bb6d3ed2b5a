"""What a table printer is: its column definitions and a function from one
object to that row's cells.

Cells are computed for every column, -o wide or not: the server answers as
Kubernetes does (all columns), and kubectl hides priority-1 columns unless
asked for -o wide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from corral.api.tables.age import age

Cell = str | int | bool
Object = dict[str, Any]


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    type: str = "string"
    format: str = ""
    priority: int = 0  # 1: shown only with -o wide

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


RowCells = Callable[[Object, datetime], list[Cell]]
RowConditions = Callable[[Object], list[dict[str, str]]]


def _no_conditions(obj: Object) -> list[dict[str, str]]:
    return []


@dataclass(frozen=True)
class Printer:
    columns: tuple[Column, ...]
    cells: RowCells
    # Row conditions (e.g. Completed for a finished pod), as Kubernetes sets them.
    conditions: RowConditions = field(default=_no_conditions)


NAME = Column("Name", "Name must be unique within a namespace.", format="name")
AGE = Column("Age", "CreationTimestamp is a timestamp representing the server time "
             "when this object was created.")
CONTAINERS = Column("Containers", "Names of each container in the template.", priority=1)
IMAGES = Column("Images", "Images referenced by each container in the template.", priority=1)
SELECTOR = Column("Selector", "Label selector of the pods.", priority=1)


def name_of(obj: Object) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def age_of(obj: Object, now: datetime) -> str:
    return age(obj.get("metadata", {}).get("creationTimestamp"), now)


def name_and_age(obj: Object, now: datetime) -> list[Cell]:
    return [name_of(obj), age_of(obj, now)]


DEFAULT = Printer((NAME, AGE), name_and_age)
"""For a kind without a printer of its own."""
