"""Rolling-update arithmetic: fenceposts, new RS growth, old RS shrinkage."""

from __future__ import annotations

import pytest

from corral.controllers.deployment.arithmetic import (
    RSView,
    cleanup_unhealthy,
    new_rs_target,
    plan_old,
    resolve_fenceposts,
)


@pytest.mark.parametrize(("surge", "unavailable", "replicas", "expected"), [
    ("25%", "25%", 4, (1, 1)), ("25%", "25%", 10, (3, 2)), (0, 0, 5, (0, 1)),
    ("0%", "0%", 5, (0, 1)), (1, 0, 3, (1, 0)), ("50%", "10%", 3, (2, 0)), (0, 0, 0, (0, 1)),
])
def test_fenceposts(surge: int | str, unavailable: int | str, replicas: int,
                    expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, replicas) == expected


def test_new_rs_grows_up_to_surge() -> None:
    old, new = RSView("old", 3, 3), RSView("new", 0, 0)
    assert new_rs_target(3, 1, [old, new], new) == 1  # 3 + 1 surge: one new pod


def test_new_rs_waits_at_the_ceiling() -> None:
    old, new = RSView("old", 3, 3), RSView("new", 1, 0)
    assert new_rs_target(3, 1, [old, new], new) == 1


def test_new_rs_never_exceeds_replicas() -> None:
    old, new = RSView("old", 0, 0), RSView("new", 2, 2)
    assert new_rs_target(3, 10, [old, new], new) == 3


def test_old_rs_waits_for_new_availability_with_max_unavailable_zero() -> None:
    old, new = RSView("old", 3, 3), RSView("new", 1, 0)
    assert plan_old(3, 0, [old], new) == [old]  # the new pod is not available yet


def test_old_rs_shrinks_once_new_is_available() -> None:
    old, new = RSView("old", 3, 3), RSView("new", 1, 1)
    assert plan_old(3, 0, [old], new) == [RSView("old", 2, 3)]


def test_unhealthy_old_pods_go_first_and_do_not_count_against_availability() -> None:
    # Old RS of 3 with only 1 available; floor 2 (replicas 3, maxUnavailable 1).
    old, new = RSView("old", 3, 1), RSView("new", 1, 1)
    assert cleanup_unhealthy([old], 10) == [RSView("old", 1, 1)]
    assert plan_old(3, 1, [old], new) == [RSView("old", 1, 1)]


def test_oldest_rs_scaled_down_first() -> None:
    a, b, new = RSView("a", 2, 2), RSView("b", 2, 2), RSView("new", 0, 0)
    assert plan_old(4, 2, [a, b], new) == [RSView("a", 0, 2), RSView("b", 2, 2)]


def test_max_unavailable_allows_dropping_below_replicas() -> None:
    old, new = RSView("old", 4, 4), RSView("new", 0, 0)
    assert plan_old(4, 1, [old], new) == [RSView("old", 3, 4)]


def test_nothing_to_do_when_old_is_empty() -> None:
    old, new = RSView("old", 0, 0), RSView("new", 3, 3)
    assert plan_old(3, 1, [old], new) == [old]
