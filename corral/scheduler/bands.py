"""Borg's priority bands as corral's built-in PriorityClasses.

Borg sorts every task into one of four bands (Verma et al., "Large-scale cluster
management at Google with Borg", §2.5): monitoring, production, batch and best
effort ("free"). A higher-priority task may preempt a lower one, except that
production-band and monitoring-band tasks are never preempted by tasks of their
own band or a lower one — that stops preemption cascades among the work that
pays the bills.

corral maps the bands onto Kubernetes PriorityClass values. A pod's band is the
band whose range holds its ``spec.priority``; pods without a class get priority 0
(Kubernetes' default) and so land in best-effort:

    band          class value    range of priorities       Borg priorities
    monitoring    1_000_000      >= 1_000_000               360+
    production      100_000      100_000 .. 999_999         200..359
    batch             1_000      1_000 .. 99_999            100..199
    best-effort           0      < 1_000                    0..99

The values stay below 1_000_000_000, the largest value Kubernetes lets a
user-defined PriorityClass have; ``system-*`` classes (2_000_000_000 and up)
fall in the monitoring band and are protected like it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Band(IntEnum):
    """Borg's priority bands, lowest first so bands compare by importance."""

    BEST_EFFORT = 0  # free capacity: first to go, no guarantees
    BATCH = 1  # throughput work; may be preempted by production
    PRODUCTION = 2  # user-facing serving; never preempted by its band or lower
    MONITORING = 3  # the monitoring that watches production; protected likewise


@dataclass(frozen=True)
class BandClass:
    """One built-in PriorityClass: its name, value, band and description."""

    name: str
    value: int
    band: Band
    description: str


BUILTIN_CLASSES: tuple[BandClass, ...] = (
    BandClass("monitoring", 1_000_000, Band.MONITORING,
              "Borg monitoring band: protected from preemption by every lower band."),
    BandClass("production", 100_000, Band.PRODUCTION,
              "Borg production band: never preempted by production, batch or best-effort."),
    BandClass("batch", 1_000, Band.BATCH,
              "Borg batch band: may be preempted by production and monitoring."),
    BandClass("best-effort", 0, Band.BEST_EFFORT,
              "Borg best-effort (free) band: preempted by every higher priority."),
)

# The lowest priority of each band, highest band first (for band_of).
_BAND_FLOORS: tuple[tuple[int, Band], ...] = (
    (1_000_000, Band.MONITORING),
    (100_000, Band.PRODUCTION),
    (1_000, Band.BATCH),
)

# Bands whose pods only a strictly higher band may preempt.
PROTECTED_BANDS: frozenset[Band] = frozenset({Band.PRODUCTION, Band.MONITORING})

CLASS_VALUES: dict[str, int] = {c.name: c.value for c in BUILTIN_CLASSES}


def band_of(priority: int) -> Band:
    """The band a pod of this priority belongs to."""
    for floor, band in _BAND_FLOORS:
        if priority >= floor:
            return band
    return Band.BEST_EFFORT


def may_preempt(preemptor_priority: int, victim_priority: int) -> bool:
    """True when a pod of ``preemptor_priority`` may evict one of ``victim_priority``:
    strictly lower priority, and a protected victim only by a higher band."""
    if victim_priority >= preemptor_priority:
        return False
    victim_band = band_of(victim_priority)
    if victim_band in PROTECTED_BANDS:
        return band_of(preemptor_priority) > victim_band
    return True


def priority_class_objects() -> list[dict[str, Any]]:
    """The built-in classes as PriorityClass wire objects, for the master to create
    at start-up. None is globalDefault: a pod without a class keeps priority 0."""
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": c.name, "labels": {"corral.io/band": c.band.name.lower()}},
            "value": c.value,
            "globalDefault": False,
            "preemptionPolicy": "PreemptLowerPriority",
            "description": c.description,
        }
        for c in BUILTIN_CLASSES
    ]
