"""Node-failure detection's timing rules on a fake clock: a node goes NotReady
only after the grace period of silence, its pods are evicted only after the
eviction timeout (or their toleration), and a pod no agent confirms stopped is
forced a grace period after its delete."""

from __future__ import annotations

from corral.client.clock import FakeClock
from corral.controllers.nodehealth import NodeHealth

GRACE, EVICTION = 4.0, 2.0


def health() -> tuple[FakeClock, NodeHealth]:
    clock = FakeClock()
    return clock, NodeHealth(clock, GRACE, EVICTION)


def test_a_node_is_unreachable_only_after_the_grace_period_of_silence() -> None:
    clock, h = health()
    assert h.renewed("n1", "t0")
    clock.advance(GRACE)
    assert not h.is_unreachable("n1")  # exactly the grace period: still fine
    clock.advance(0.1)
    assert h.is_unreachable("n1")


def test_each_renewal_restarts_the_grace_period_and_a_repeat_does_not() -> None:
    clock, h = health()
    h.renewed("n1", "t0")
    clock.advance(3)
    assert h.renewed("n1", "t1")
    clock.advance(3)
    assert not h.is_unreachable("n1")  # 3 s since the last renewal
    assert not h.renewed("n1", "t1")  # the same renewTime seen again is no renewal
    clock.advance(1.5)
    assert h.is_unreachable("n1")


def test_a_node_never_seen_renewing_gets_a_full_grace_period() -> None:
    """After a restart or a leader change: no false alarm for a renewal we missed."""
    clock, h = health()
    clock.advance(100)
    assert not h.is_unreachable("n1")
    clock.advance(GRACE + 0.1)
    assert h.is_unreachable("n1")


def test_eviction_after_the_timeout_counted_from_the_first_unreachable_look() -> None:
    clock, h = health()
    h.renewed("n1", "t0")
    clock.advance(GRACE + 1)
    assert h.is_unreachable("n1")
    assert h.unreachable_for("n1") == 0  # counting starts at this look
    clock.advance(EVICTION - 0.5)
    assert not h.eviction_due(h.unreachable_for("n1"), tolerated=None)
    clock.advance(0.5)
    assert h.eviction_due(h.unreachable_for("n1"), tolerated=None)


def test_tolerations_delay_eviction_but_never_shorten_it() -> None:
    _, h = health()
    assert not h.eviction_due(30, tolerated=60)
    assert h.eviction_due(60, tolerated=60)
    assert not h.eviction_due(1, tolerated=0)  # below the timeout still waits
    assert not h.eviction_due(10**9, tolerated=float("inf"))  # tolerated forever


def test_a_node_back_resets_the_eviction_clock() -> None:
    clock, h = health()
    h.renewed("n1", "t0")
    clock.advance(GRACE + 1)
    h.unreachable_for("n1")
    clock.advance(10)
    assert h.renewed("n1", "t1")
    assert not h.is_unreachable("n1")
    # Still to be looked at (for its NodeReady) until back() is called, then not.
    assert h.was_unreachable("n1") and not h.was_unreachable("n2")
    assert h.back("n1") and not h.back("n1")  # NodeReady is reported once
    assert not h.was_unreachable("n1")
    clock.advance(GRACE + 1)
    assert h.unreachable_for("n1") == 0


def test_a_deleted_pod_is_forced_a_grace_period_after_its_delete() -> None:
    clock, h = health()
    h.deleted("uid-1")
    clock.advance(GRACE - 0.1)
    assert not h.stuck("uid-1")
    clock.advance(0.1)
    assert h.stuck("uid-1")
    h.gone("uid-1")
    assert not h.stuck("uid-1")  # a fresh count for a uid seen deleting anew


def test_forgetting_a_node_starts_it_afresh() -> None:
    clock, h = health()
    h.renewed("n1", "t0")
    clock.advance(GRACE + 1)
    assert h.is_unreachable("n1")
    h.forget("n1")
    assert not h.is_unreachable("n1")
