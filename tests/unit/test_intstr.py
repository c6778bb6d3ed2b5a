"""IntOrString counts: Kubernetes' GetScaledValueFromIntOrPercent."""

from __future__ import annotations

import pytest

from corral.intstr import parse, scaled_value


@pytest.mark.parametrize(("value", "total", "up", "expected"), [
    (3, 10, True, 3), (3, 10, False, 3), ("25%", 10, True, 3), ("25%", 10, False, 2),
    ("0%", 10, True, 0), ("100%", 7, False, 7), ("33%", 3, True, 1), ("33%", 3, False, 0),
    ("50%", 0, True, 0), ("150%", 4, False, 6), ("10%", 1, True, 1), ("10%", 1, False, 0),
])
def test_scaled_value(value: int | str, total: int, up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up=up) == expected


@pytest.mark.parametrize("value", ["5", "x%", "%", "-5%", "5 %", "²%", ""])
def test_a_string_that_is_not_a_percentage_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a percentage"):
        parse(value)


def test_parse_says_which_kind() -> None:
    assert parse(7) == (7, False)
    assert parse("7%") == (7, True)
