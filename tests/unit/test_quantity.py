"""Quantities parse exactly as Kubernetes parses them, and bad ones are rejected."""

from __future__ import annotations

from decimal import Decimal

import pytest

from corral.api.quantity import (
    bytes_value,
    cpu_millis,
    format_bytes,
    format_cpu,
    is_quantity,
    parse_quantity,
)

PARSES = [
    ("0", Decimal(0)),
    ("1", Decimal(1)),
    ("1.5", Decimal("1.5")),
    (".5", Decimal("0.5")),
    ("5.", Decimal(5)),
    ("+2", Decimal(2)),
    ("-2", Decimal(-2)),
    ("500m", Decimal("0.5")),
    ("100u", Decimal("0.0001")),
    ("3n", Decimal("0.000000003")),
    ("1k", Decimal(1000)),
    ("2M", Decimal(2_000_000)),
    ("2G", Decimal(2_000_000_000)),
    ("1T", Decimal(10**12)),
    ("1P", Decimal(10**15)),
    ("1E", Decimal(10**18)),
    ("1Ki", Decimal(1024)),
    ("512Mi", Decimal(512 * 1024**2)),
    ("1.5Gi", Decimal(3 * 1024**3 // 2)),
    ("1Ti", Decimal(1024**4)),
    ("1Pi", Decimal(1024**5)),
    ("1Ei", Decimal(1024**6)),
    ("1e3", Decimal(1000)),
    ("1E3", Decimal(1000)),
    ("12e-3", Decimal("0.012")),
    ("1e+2", Decimal(100)),
    (3, Decimal(3)),
    (0.25, Decimal("0.25")),
]


@pytest.mark.parametrize(("text", "expected"), PARSES, ids=[str(p[0]) for p in PARSES])
def test_parses(text: str | float, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


REJECTS = ["", "abc", "2GB", "1.2.3", "1 Gi", " 1", "Gi", "1mi", "1KI", "1e", "1e3.5", "--1",
           "1Mb", "0x10", "1ii"]


@pytest.mark.parametrize("text", REJECTS)
def test_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not valid"):
        parse_quantity(text)
    assert not is_quantity(text)


@pytest.mark.parametrize("value", [True, float("nan"), float("inf")])
def test_rejects_non_numbers(value: object) -> None:
    assert not is_quantity(value)


@pytest.mark.parametrize(("text", "millis"), [
    ("250m", 250), ("1", 1000), ("1.5", 1500), ("0.1", 100), ("1u", 1), ("1.5m", 2),
    ("0", 0), ("2k", 2_000_000),
])
def test_cpu_millis_rounds_up(text: str, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(("text", "n"), [
    ("512Mi", 536870912), ("1k", 1000), ("1G", 10**9), ("1.5", 2), ("100m", 1), ("0", 0),
    ("1e3", 1000),
])
def test_bytes_value_rounds_up(text: str, n: int) -> None:
    assert bytes_value(text) == n


@pytest.mark.parametrize(("millis", "text"), [(2000, "2"), (1500, "1500m"), (0, "0"), (1, "1m")])
def test_format_cpu(millis: int, text: str) -> None:
    assert format_cpu(millis) == text
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(("n", "text"), [
    (536870912, "512Mi"), (1024, "1Ki"), (1536, "1536"), (1000, "1000"), (0, "0"),
    (3 * 1024**3, "3Gi"), (1024**6, "1Ei"),
])
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text
    assert bytes_value(text) == n
