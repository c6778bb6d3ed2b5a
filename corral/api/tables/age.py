"""Ages and durations as kubectl prints them: Kubernetes'
k8s.io/apimachinery/pkg/util/duration.HumanDuration, which shows more detail
for short durations ("3m12s") and less for long ones ("5m", "2d3h", "40d")."""

from __future__ import annotations

from datetime import datetime, timedelta

from corral.objects import parse_time

UNKNOWN = "<unknown>"


def human_duration(d: timedelta) -> str:
    # Go truncates toward zero; up to one second in the future is taken as
    # clock skew between machines and shown as "0s".
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return _two_units(minutes, "m", seconds % 60, "s")
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return _two_units(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(major: int, major_unit: str, minor: int, minor_unit: str) -> str:
    if minor == 0:
        return f"{major}{major_unit}"
    return f"{major}{major_unit}{minor}{minor_unit}"


def age(value: object, now: datetime) -> str:
    """How long ago a timestamp was, as the AGE column shows it."""
    moment = parse_time(value)
    if moment is None:
        return UNKNOWN
    return human_duration(now - moment)


def duration_between(start: object, end: object) -> str:
    """The time from start to end, or "" when either is missing."""
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None:
        return ""
    return human_duration(last - first)
