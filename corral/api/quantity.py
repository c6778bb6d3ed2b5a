"""Kubernetes resource quantities ("500m", "1.5", "512Mi", "1e3", "2G").

A quantity is a signed decimal number followed by one optional suffix:

    binary SI    Ki Mi Gi Ti Pi Ei          powers of 1024
    decimal SI   n u m "" k M G T P E       powers of 1000
    exponent     e<int> / E<int>            powers of 10 ("1e3" is 1000)

Values are exact (``Decimal``), so "0.1" CPU is exactly 100 millicores. Like
Kubernetes' ``MilliValue``/``Value``, integer conversions round up: a request of
"1.5m" CPU needs 2 millicores, never 1.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_BINARY: dict[str, int] = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL: dict[str, int] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?\d+)$")

# What manifests carry: usually a string, sometimes a bare JSON number.
QuantityLike = str | float | Decimal  # float admits int too

# Formatting walks suffixes from largest to smallest and takes the first that
# divides the value evenly.
_BINARY_DESCENDING = sorted(_BINARY.items(), key=lambda kv: -kv[1])


def parse_quantity(value: QuantityLike) -> Decimal:
    """Parse a quantity exactly. Raises ValueError naming the bad input
    ("2GB", "abc", "", "1.2.3"), TypeError for a bool."""
    if isinstance(value, bool):
        raise TypeError(f"quantities must be numbers or strings, not {value!r}")
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"quantity {value!r} is not a finite number")
        return Decimal(repr(value))
    return _parse_string(value)


def _parse_string(text: str) -> Decimal:
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(_unparseable(text))
    number, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        raise ValueError(_unparseable(text)) from None
    return base * _multiplier(text, suffix)


def _multiplier(text: str, suffix: str) -> Decimal:
    if suffix in _BINARY:
        return Decimal(1024) ** _BINARY[suffix]
    if suffix in _DECIMAL:
        return Decimal(10) ** _DECIMAL[suffix]
    exponent = _EXPONENT.match(suffix)
    if exponent is None:
        raise ValueError(_unparseable(text))
    return Decimal(10) ** int(exponent.group(1))


def _unparseable(text: str) -> str:
    return (
        f"quantity {text!r} is not valid: must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (e.g. '500m', '1.5', '512Mi', '2G')"
    )


def is_quantity(value: object) -> bool:
    """True when ``value`` parses as a quantity."""
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def cpu_millis(quantity: QuantityLike) -> int:
    """CPU in millicores, rounded up ("250m" → 250, "1.5" → 1500, "1u" → 1)."""
    return _ceil(parse_quantity(quantity) * 1000)


def bytes_value(quantity: QuantityLike) -> int:
    """A byte count (or any plain count), rounded up ("512Mi" → 536870912, "1k" → 1000)."""
    return _ceil(parse_quantity(quantity))


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def format_cpu(millis: int) -> str:
    """Millicores as Kubernetes writes them: 2000 → "2", 1500 → "1500m", 0 → "0"."""
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_bytes(n: int) -> str:
    """Bytes with the largest binary suffix that divides evenly:
    536870912 → "512Mi", 1024 → "1Ki", 1536 → "1536", 1000 → "1000"."""
    if n == 0:
        return "0"
    for suffix, power in _BINARY_DESCENDING:
        unit = 1024**power
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)
