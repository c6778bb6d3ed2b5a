"""corral's built-in PriorityClasses: Borg's four priority bands as API data.

The API server creates these at start-up; the scheduler reads its band floors
from the same table (corral/scheduler/bands.py keeps the preemption rule).
Values stay below 1_000_000_000, the largest a user-defined PriorityClass may
have. None is globalDefault: a pod without a class keeps priority 0 and so lands
in best-effort.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.objects import Obj

BAND_LABEL = "corral.io/band"


@dataclass(frozen=True)
class BuiltinClass:
    """One built-in PriorityClass; ``value`` is also the lowest priority of its band."""

    name: str
    value: int
    band: str  # the BAND_LABEL value
    description: str


BUILTIN_CLASSES: tuple[BuiltinClass, ...] = (
    BuiltinClass("monitoring", 1_000_000, "monitoring",
                 "Borg monitoring band: protected from preemption by every lower band."),
    BuiltinClass("production", 100_000, "production",
                 "Borg production band: never preempted by production, batch or best-effort."),
    BuiltinClass("batch", 1_000, "batch",
                 "Borg batch band: may be preempted by production and monitoring."),
    BuiltinClass("best-effort", 0, "best_effort",
                 "Borg best-effort (free) band: preempted by every higher priority."),
)

CLASS_VALUES: dict[str, int] = {c.name: c.value for c in BUILTIN_CLASSES}


def priority_class_objects() -> list[Obj]:
    """The built-in classes as PriorityClass wire objects."""
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": c.name, "labels": {BAND_LABEL: c.band}},
            "value": c.value,
            "globalDefault": False,
            "preemptionPolicy": "PreemptLowerPriority",
            "description": c.description,
        }
        for c in BUILTIN_CLASSES
    ]
