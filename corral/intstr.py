"""Kubernetes' IntOrString counts (apimachinery's util/intstr): a field such as
maxSurge, maxUnavailable or minAvailable holds either a count (3) or a
percentage of some total ("25%").

One home for the API's validation and for every controller that turns such a
field into a number of pods (Deployment, DaemonSet, StatefulSet,
PodDisruptionBudget), so they all read it the same way.
"""

from __future__ import annotations


def parse(value: int | str) -> tuple[int, bool]:
    """getIntOrPercentValueSafely: (the number, whether it is a percentage).

    Raises ValueError for a string that is not digits followed by "%" ("5",
    "x%"): Kubernetes takes a bare count only as an int.
    """
    if isinstance(value, int):
        return value, False
    digits = value[:-1] if value.endswith("%") else ""
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"invalid value for IntOrString: {value!r} is not a percentage")
    return int(digits), True


def scaled_value(value: int | str, total: int, *, round_up: bool) -> int:
    """GetScaledValueFromIntOrPercent: a count as it is; a percentage of ``total``,
    rounded up or down as the caller's rule needs (a Deployment's maxSurge rounds
    up and its maxUnavailable down; a PDB's numbers round up)."""
    number, is_percent = parse(value)
    if not is_percent:
        return number
    share = number * total
    return -(-share // 100) if round_up else share // 100
