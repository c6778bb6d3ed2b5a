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

import functools
import math
import re
from decimal import MAX_EMAX, MIN_EMIN, ROUND_CEILING, Context, Decimal, localcontext

_BINARY: dict[str, int] = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL: dict[str, int] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}
_QUANTITY = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(.*)", re.ASCII | re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?\d+)", re.ASCII)

# What manifests carry: usually a string, sometimes a bare JSON number.
QuantityLike = str | float | Decimal  # float admits int too

# Formatting walks suffixes from largest to smallest and takes the first that
# divides the value evenly.
_BINARY_DESCENDING = sorted(_BINARY.items(), key=lambda kv: -kv[1])


# resource.Quantity holds at most an int64 in its unit and at least a nano: larger
# values are refused here (Kubernetes caps them silently at this bound, which
# passes validation and breaks every sum), smaller non-zero ones round up to 1n.
MAX_QUANTITY = Decimal(2**63 - 1)
_NANO = Decimal("1e-9")
_INT32_MAX = 2**31 - 1  # resource.Quantity's exponents are int32
_MATCH_MESSAGE = ("quantities must match the regular expression "
                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
# Exact arithmetic for every value within the bound (19 integer digits, 9 after
# the point, and the digits a long mantissa brings).
_EXACT = Context(prec=64, Emax=MAX_EMAX, Emin=MIN_EMIN)


class QuantityTooLarge(ValueError):
    """A quantity beyond MAX_QUANTITY."""


def parse_quantity(value: QuantityLike) -> Decimal:
    """Parse a quantity exactly. Raises ValueError naming the bad input
    ("2GB", "abc", "", "1.2.3", "1e400"), TypeError for a bool."""
    if isinstance(value, bool):
        raise TypeError(f"quantities must be numbers or strings, not {value!r}")
    if isinstance(value, (int, Decimal)):
        return _bounded(str(value), Decimal(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"quantity {value!r} is not a finite number")
        return _bounded(repr(value), Decimal(repr(value)))
    return _parse_string(value)


@functools.lru_cache(maxsize=1024)
def _parse_string(text: str) -> Decimal:
    """Cached: the same few quantities ("100m", "32Mi") come in every task of an
    Alloc and every container of a Pod, on each of their writes. A refused one
    raises again each time (errors are not cached)."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(_unparseable(text))
    number, suffix = match.groups()
    base = Decimal(number)
    ten, two = _suffix_powers(text, suffix)
    if base and base.adjusted() + ten + (two * 3010 // 10000) > 19:
        raise QuantityTooLarge(_too_large(text))  # known before computing 10**999999
    with localcontext(_EXACT):
        return _bounded(text, base * Decimal(10) ** ten * Decimal(2) ** two)


def _suffix_powers(text: str, suffix: str) -> tuple[int, int]:
    """(power of ten, power of two) the suffix multiplies by."""
    if suffix in _BINARY:
        return 0, 10 * _BINARY[suffix]
    if suffix in _DECIMAL:
        return _DECIMAL[suffix], 0
    exponent = _EXPONENT.fullmatch(suffix)
    if exponent is None or len(exponent.group(1)) > 11:
        raise ValueError(_unparseable(text))
    power = int(exponent.group(1))
    if abs(power) > _INT32_MAX:
        raise ValueError(_unparseable(text))
    return power, 0


def _bounded(text: str, value: Decimal) -> Decimal:
    if abs(value) > MAX_QUANTITY:
        raise QuantityTooLarge(_too_large(text))
    if value and abs(value) < _NANO:  # Kubernetes rounds a non-zero request up to 1n
        return _NANO if value > 0 else -_NANO
    return value


def _too_large(text: str) -> str:
    return f"quantity {_short(text)!r} is too large: must be at most {MAX_QUANTITY} (an int64)"


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _unparseable(text: str) -> str:
    return f"quantity {_short(text)!r} is not valid: {_MATCH_MESSAGE} (e.g. '500m', '1.5', '512Mi')"


def is_quantity(value: object) -> bool:
    """True when ``value`` parses as a quantity."""
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def cpu_millis(quantity: QuantityLike) -> int:
    """CPU in millicores, rounded up ("250m" → 250, "1.5" → 1500, "1u" → 1)."""
    return milli_value(quantity)


def milli_value(quantity: QuantityLike) -> int:
    """Any quantity in thousandths, rounded up (Kubernetes' MilliValue: "64Mi" →
    67108864000, "1234n" → 2)."""
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


_DECIMAL_SUFFIXES = ("m", "", "k", "M", "G", "T", "P", "E")


def format_milli(milli: int) -> str:
    """Thousandths as a decimal-SI quantity in Kubernetes' canonical form (a
    NewMilliQuantity's String): the largest suffix that keeps the number whole,
    1500 → "1500m", 2000 → "2", 5000000000 → "5M", 1048576000 → "1048576"."""
    if milli == 0:
        return "0"
    step = 0
    while milli % 1000 == 0 and step < len(_DECIMAL_SUFFIXES) - 1:
        milli //= 1000
        step += 1
    return f"{milli}{_DECIMAL_SUFFIXES[step]}"


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
