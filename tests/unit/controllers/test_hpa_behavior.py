"""Stabilization windows and scaling rates of the HPA, on a fake clock (Kubernetes'
horizontal.go normalizeDesiredReplicas[WithBehaviors] is the reference)."""

from __future__ import annotations

from typing import Any

from corral.client.clock import FakeClock
from corral.controllers.autoscaling.behavior import (
    Bounds,
    History,
    Normalized,
    normalize,
    record_scale,
)


def rules(window: int, *policies: tuple[str, int, int], select: str = "Max") -> dict[str, Any]:
    return {"stabilizationWindowSeconds": window, "selectPolicy": select,
            "policies": [{"type": t, "value": v, "periodSeconds": p} for t, v, p in policies]}


DEFAULT_UP = rules(0, ("Pods", 4, 15), ("Percent", 100, 15))
DEFAULT_DOWN = rules(300, ("Percent", 100, 15))


class Autoscaler:
    """One HPA's history on a fake clock: each step is one reconcile that scales
    to what normalize decides."""

    def __init__(self, behavior: dict[str, Any] | None, current: int, minimum: int = 1,
                 maximum: int = 100) -> None:
        self.clock = FakeClock()
        self.behavior = behavior
        self.history = History()
        self.history.start(current, self.clock.now())
        self.current, self.minimum, self.maximum = current, minimum, maximum

    def step(self, desired: int, after: float = 15.0) -> Normalized:
        self.clock.advance(after)
        now = self.clock.now()
        result = normalize(self.history, self.behavior,
                           Bounds(self.current, self.minimum, self.maximum), desired, now)
        if result.replicas != self.current:
            record_scale(self.history, self.behavior, self.current, result.replicas, now)
            self.current = result.replicas
        return result


def test_scale_down_waits_for_the_stabilization_window() -> None:
    hpa = Autoscaler({"scaleUp": DEFAULT_UP, "scaleDown": rules(60, ("Percent", 100, 15))}, 5)
    held = hpa.step(2, after=1)
    assert (held.replicas, held.able_reason) == (5, "ScaleDownStabilized")
    assert hpa.step(2, after=30).replicas == 5
    # 61 s after the recommendation of 5, only the 2s remain in the window
    done = hpa.step(2, after=30)
    assert (done.replicas, done.able_reason, done.limited) == (2, "ReadyForNewScale", False)


def test_the_highest_recommendation_in_the_window_wins() -> None:
    hpa = Autoscaler({"scaleUp": DEFAULT_UP, "scaleDown": rules(60, ("Percent", 100, 15))}, 6)
    hpa.step(4, after=61)  # the initial 6 is out of the window: down to 4
    assert hpa.current == 4
    hpa.step(3, after=10)
    assert hpa.current == 4  # 4 was recommended 10 s ago
    assert hpa.step(2, after=55).replicas == 3  # the 4 left the window, the 3 did not


def test_scale_up_is_immediate_but_rate_limited() -> None:
    hpa = Autoscaler({"scaleUp": DEFAULT_UP, "scaleDown": DEFAULT_DOWN}, 2)
    first = hpa.step(20)
    # Pods +4 → 6, Percent +100% → 4; Max takes 6
    assert (first.replicas, first.limited, first.limited_reason) == (6, True, "ScaleUpLimit")
    # 5 s later the period still holds the +4: start 2 again, so no more growth
    assert hpa.step(20, after=5).replicas == 6
    # past the 15 s period: from 6, +4 → 10, +100% → 12
    assert hpa.step(20, after=15).replicas == 12


def test_select_policy_min_and_disabled() -> None:
    up_min = rules(0, ("Pods", 4, 15), ("Percent", 100, 15), select="Min")
    assert Autoscaler({"scaleUp": up_min, "scaleDown": DEFAULT_DOWN}, 2).step(20).replicas == 4
    disabled = rules(0, ("Pods", 4, 15), select="Disabled")
    held = Autoscaler({"scaleUp": disabled, "scaleDown": DEFAULT_DOWN}, 2).step(20)
    assert (held.replicas, held.limited_reason) == (2, "ScaleUpLimit")


def test_scale_down_rate() -> None:
    down = rules(0, ("Percent", 50, 60))
    hpa = Autoscaler({"scaleUp": DEFAULT_UP, "scaleDown": down}, 10)
    first = hpa.step(1)
    assert (first.replicas, first.limited_reason) == (5, "ScaleDownLimit")
    assert hpa.step(1, after=30).replicas == 5  # the period still holds the -5
    assert hpa.step(1, after=31).replicas == 2  # from 5: int(5 · 0.5)


def test_min_and_max_replicas_bound_the_result() -> None:
    up = Autoscaler({"scaleUp": rules(0, ("Pods", 100, 15)), "scaleDown": DEFAULT_DOWN}, 2,
                    maximum=5).step(9)
    assert (up.replicas, up.limited_reason) == (5, "TooManyReplicas")
    down = Autoscaler({"scaleUp": DEFAULT_UP, "scaleDown": rules(0, ("Percent", 100, 15))}, 4,
                      minimum=3).step(1)
    assert (down.replicas, down.limited_reason) == (3, "TooFewReplicas")


def test_a_scale_up_stabilization_window_takes_the_lowest() -> None:
    hpa = Autoscaler({"scaleUp": rules(30, ("Pods", 10, 15)), "scaleDown": DEFAULT_DOWN}, 2)
    held = hpa.step(6, after=1)
    assert (held.replicas, held.able_reason) == (2, "ScaleUpStabilized")
    assert hpa.step(6, after=31).replicas == 6


def test_without_behavior_the_classic_rules() -> None:
    hpa = Autoscaler(None, 1, maximum=20)
    first = hpa.step(10)
    assert (first.replicas, first.limited_reason) == (4, "ScaleUpLimit")  # max(2·1, 4)
    assert hpa.step(10).replicas == 8  # max(2·4, 4)
    assert hpa.step(2).replicas == 10  # up to 10; the 5 min down window holds it
    assert hpa.step(2, after=301).replicas == 2
    low = Autoscaler(None, 3, minimum=2).step(1, after=301)
    assert (low.replicas, low.limited_reason) == (2, "TooFewReplicas")
