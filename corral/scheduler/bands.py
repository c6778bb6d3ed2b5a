"""Borg's priority bands as corral's built-in PriorityClasses.

Borg sorts every task into one of four bands (Verma et al., "Large-scale cluster
management at Google with Borg", §2.5): monitoring, production, batch and best
effort ("free"). A higher-priority task may preempt a lower one, except that
production-band and monitoring-band tasks are never preempted by tasks of their
own band or a lower one — that stops preemption cascades among the work that
pays the bills.

corral maps the bands onto Kubernetes PriorityClass values (the classes are API
data: corral/api/priorityclasses.py; each band's floor is its class's value). A
pod's band is the band whose range holds its ``spec.priority``; pods without a
class get priority 0 (Kubernetes' default) and so land in best-effort:

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

from enum import IntEnum

from corral.api.priorityclasses import BUILTIN_CLASSES


class Band(IntEnum):
    """Borg's priority bands, lowest first so bands compare by importance."""

    BEST_EFFORT = 0  # free capacity: first to go, no guarantees
    BATCH = 1  # throughput work; may be preempted by production
    PRODUCTION = 2  # user-facing serving; never preempted by its band or lower
    MONITORING = 3  # the monitoring that watches production; protected likewise


# The lowest priority of each band (its built-in class's value), highest band
# first (for band_of).
_BAND_FLOORS: tuple[tuple[int, Band], ...] = tuple(sorted(
    ((c.value, Band[c.band.upper()]) for c in BUILTIN_CLASSES
     if Band[c.band.upper()] is not Band.BEST_EFFORT), reverse=True))

# Bands whose pods only a strictly higher band may preempt.
PROTECTED_BANDS: frozenset[Band] = frozenset({Band.PRODUCTION, Band.MONITORING})


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
