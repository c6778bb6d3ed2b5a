"""CronJob schedules as Kubernetes reads them: the standard five fields
(minute hour day-of-month month day-of-week) or a macro (@yearly, @annually,
@monthly, @weekly, @daily, @midnight, @hourly), evaluated in a time zone.

The arithmetic is croniter's (a maintained library with the same field
grammar); this module holds Kubernetes' own rules on top: five fields only (no
seconds or years), no TZ= prefix inside the schedule, and "the most recent
time the schedule fired in (earliest, now]" with a count of the times missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_MISSED = 100  # past this many missed times Kubernetes warns: the clock or controller lagged


class BadSchedule(ValueError):
    """The schedule or time zone cannot be used; the message says why."""


@dataclass(frozen=True)
class Schedule:
    expression: str  # five fields
    zone: ZoneInfo

    def next_after(self, when: datetime) -> datetime:
        result: datetime = croniter(self.expression, when.astimezone(self.zone)).get_next(
            datetime)
        return result

    def _latest_at_or_before(self, now: datetime) -> datetime:
        prev: datetime = croniter(self.expression, now.astimezone(self.zone)).get_prev(datetime)
        following = self.next_after(prev)
        return following if following <= now else prev

    def most_recent(self, earliest: datetime, now: datetime) -> tuple[datetime | None, int]:
        """The latest fire time in (earliest, now] and how many fell in that range
        (counting stops past MAX_MISSED)."""
        latest: datetime | None = None
        missed = 0
        t = self.next_after(earliest)
        while t <= now:
            latest, missed = t, missed + 1
            if missed > MAX_MISSED:
                return self._latest_at_or_before(now), missed  # skip the walk through the rest
            t = self.next_after(t)
        return latest, missed


def parse(schedule: str, time_zone: str | None = None) -> Schedule:
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        raise BadSchedule("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    expression = MACROS.get(text.lower(), text) if text.startswith("@") else text
    if text.startswith("@") and text.lower() not in MACROS:
        raise BadSchedule(f"unrecognized descriptor: {text}")
    fields = expression.split()
    if len(fields) != 5:
        raise BadSchedule(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    if not croniter.is_valid(expression):
        raise BadSchedule(f"unparseable schedule {schedule!r}")
    return Schedule(expression, zone(time_zone))


def zone(name: str | None) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSchedule(f"unknown time zone {name}") from None
