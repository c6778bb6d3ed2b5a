"""From the metrics' recommendation to the replicas to set: stabilization windows
and scaling rates, as Kubernetes' horizontal.go normalizes (pure; time is passed in).

    with spec.behavior (defaulted by the API: every rule present)
      stabilize: over the last scaleUp.stabilizationWindowSeconds take the lowest
                 recommendation, over scaleDown's the highest; the current count
                 clamped between them is the stabilized recommendation
      rate:      each policy allows, from the count at the start of its period
                 (now minus the scale events within periodSeconds), Pods: ±value,
                 Percent: ×(1 ± value/100) (rounded up when growing); selectPolicy
                 Max takes the policy allowing the biggest change, Min the
                 smallest, Disabled none; then min/maxReplicas
    without behavior (the classic rules)
      stabilize: the highest recommendation of the last 300 s (the controller's
                 --horizontal-pod-autoscaler-downscale-stabilization)
      rate:      up to max(2 × current, 4), then min/maxReplicas

Each HPA's History (its recommendations and scale events) lives in the
controller's memory, as in kube-controller-manager: a new leader starts afresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DOWNSCALE_STABILIZATION = timedelta(minutes=5)
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
# ScalingLimited's reason and message: what bounded the count, or nothing.
SCALE_UP_LIMIT = ("ScaleUpLimit",
                  "the desired replica count is increasing faster than the maximum scale rate")
SCALE_DOWN_LIMIT = ("ScaleDownLimit",
                    "the desired replica count is decreasing faster than the maximum scale rate")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
Limited = tuple[int, str, str]  # replicas, ScalingLimited reason, message
# AbleToScale's reason and message after stabilization.
READY = ("ReadyForNewScale", "recommended size matches current size")
UP_STABILIZED = ("ScaleUpStabilized", ("recent recommendations were lower than current one, "
                 "applying the lowest recent recommendation"))
DOWN_STABILIZED = ("ScaleDownStabilized", ("recent recommendations were higher than current "
                   "one, applying the highest recent recommendation"))


@dataclass
class Recommendation:
    replicas: int
    at: datetime


@dataclass
class ScaleEvent:
    change: int  # replicas added (scale-up list) or removed (scale-down list)
    at: datetime


@dataclass
class History:
    recommendations: list[Recommendation] = field(default_factory=list)
    scale_ups: list[ScaleEvent] = field(default_factory=list)
    scale_downs: list[ScaleEvent] = field(default_factory=list)

    def start(self, current: int, now: datetime) -> None:
        """recordInitialRecommendation: the first look counts the current size."""
        if not self.recommendations:
            self.recommendations.append(Recommendation(current, now))


@dataclass(frozen=True)
class Normalized:
    replicas: int
    able_reason: str  # AbleToScale (True) reason and message
    able_message: str
    limited: bool  # ScalingLimited status, reason and message
    limited_reason: str
    limited_message: str


@dataclass(frozen=True)
class Bounds:
    current: int
    minimum: int
    maximum: int


def normalize(history: History, behavior: dict[str, Any] | None, bounds: Bounds, desired: int,
              now: datetime,
              downscale_window: timedelta = DOWNSCALE_STABILIZATION) -> Normalized:
    if behavior is None:
        return _classic(history, bounds, desired, now, downscale_window)
    up, down = behavior.get("scaleUp") or {}, behavior.get("scaleDown") or {}
    up_window = int(up.get("stabilizationWindowSeconds") or 0)
    down_window = down.get("stabilizationWindowSeconds")
    down_seconds = (downscale_window.total_seconds() if down_window is None
                    else float(down_window))
    stabilized = _stabilize(history, bounds.current, desired, now,
                            timedelta(seconds=up_window), timedelta(seconds=down_seconds))
    if stabilized == desired:
        able = READY
    else:
        able = UP_STABILIZED if desired >= bounds.current else DOWN_STABILIZED
    replicas, reason, message = _with_rate(history, up, down, bounds, stabilized, now)
    return Normalized(replicas, *able, replicas != stabilized, reason, message)


def _stabilize(history: History, current: int, desired: int, now: datetime,
               up_window: timedelta, down_window: timedelta) -> int:
    """stabilizeRecommendationWithBehaviors; records ``desired``, reusing the slot
    of a sample older than both windows."""
    up_cut, down_cut = now - up_window, now - down_window
    lowest = highest = desired
    old: int | None = None
    for i, rec in enumerate(history.recommendations):
        if rec.at > up_cut:
            lowest = min(rec.replicas, lowest)
        if rec.at > down_cut:
            highest = max(rec.replicas, highest)
        if rec.at < up_cut and rec.at < down_cut:
            old = i
    _record(history, desired, now, old)
    return min(max(current, lowest), highest)


def _record(history: History, desired: int, now: datetime, slot: int | None) -> None:
    if slot is None:
        history.recommendations.append(Recommendation(desired, now))
    else:
        history.recommendations[slot] = Recommendation(desired, now)


def _with_rate(history: History, up: dict[str, Any], down: dict[str, Any], bounds: Bounds,
               desired: int, now: datetime) -> Limited:
    """convertDesiredReplicasWithBehaviorRate."""
    current = bounds.current
    if desired > current:
        ceiling = _ceiling(max(_rate_limit(current, history, up, now, growing=True), current),
                           bounds.maximum)
        if desired > ceiling[0]:
            return ceiling
    elif desired < current:
        limit = min(_rate_limit(current, history, down, now, growing=False), current)
        floor = (limit, *SCALE_DOWN_LIMIT) if bounds.minimum < limit else \
            (bounds.minimum, *TOO_FEW)
        if desired < floor[0]:
            return floor
    return (desired, *WITHIN_RANGE)


def _ceiling(rate_limit: int, maximum: int) -> Limited:
    """The most replicas allowed: the rate's limit, or maxReplicas if that is lower."""
    return (rate_limit, *SCALE_UP_LIMIT) if maximum > rate_limit else (maximum, *TOO_MANY)


def _rate_limit(current: int, history: History, rules: dict[str, Any], now: datetime, *,
                growing: bool) -> int:
    """calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    # For growth Max picks the highest proposal; for shrinking the lowest.
    pick = max if (select == "Max") == growing else min
    proposals: list[int] = []
    for policy in rules.get("policies") or []:
        period = timedelta(seconds=int(policy.get("periodSeconds") or 0))
        added = _changed_within(history.scale_ups, period, now)
        removed = _changed_within(history.scale_downs, period, now)
        start = current - added + removed
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposals.append(start + value if growing else start - value)
        elif growing:
            proposals.append(math.ceil(start * (1 + value / 100)))
        else:
            proposals.append(int(start * (1 - value / 100)))
    return pick(proposals) if proposals else current


def _changed_within(events: list[ScaleEvent], period: timedelta, now: datetime) -> int:
    return sum(e.change for e in events if e.at > now - period)


def record_scale(history: History, behavior: dict[str, Any] | None, before: int, after: int,
                 now: datetime) -> None:
    """storeScaleEvent: remember a rescale for the rate policies, forgetting
    events older than the longest period of that direction."""
    if behavior is None:
        return  # the classic rules use no events
    growing = after > before
    rules = (behavior.get("scaleUp") if growing else behavior.get("scaleDown")) or {}
    longest = max((int(p.get("periodSeconds") or 0) for p in rules.get("policies") or []),
                  default=0)
    events = history.scale_ups if growing else history.scale_downs
    events[:] = [e for e in events if e.at > now - timedelta(seconds=longest)]
    events.append(ScaleEvent(abs(after - before), now))


def _classic(history: History, bounds: Bounds, desired: int, now: datetime,
             window: timedelta) -> Normalized:
    """normalizeDesiredReplicas: the rules of an HPA without behavior."""
    highest = desired
    old: int | None = None
    for i, rec in enumerate(history.recommendations):
        if rec.at < now - window:
            old = i
        elif rec.replicas > highest:
            highest = rec.replicas
    _record(history, desired, now, old)
    able = READY if highest == desired else DOWN_STABILIZED
    replicas, reason, message = _with_rules(bounds, highest)
    return Normalized(replicas, *able, replicas != highest, reason, message)


def _with_rules(bounds: Bounds, desired: int) -> Limited:
    """convertDesiredReplicasWithRules."""
    up_limit = int(max(SCALE_UP_LIMIT_FACTOR * bounds.current, SCALE_UP_LIMIT_MINIMUM))
    ceiling = _ceiling(up_limit, bounds.maximum)
    if desired < bounds.minimum:
        return (bounds.minimum, *TOO_FEW)
    if desired > ceiling[0]:
        return ceiling
    return (desired, *WITHIN_RANGE)
