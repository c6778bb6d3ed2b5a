"""What an offer holds and a task asks for: cpus, mem, disk and port ranges.

Units are Mesos': ``cpus`` in cores, ``mem`` and ``disk`` in MiB, ``ports`` as
inclusive ranges. Scalars are kept to three decimal places, as Mesos' fixed-point
``Value.Scalar`` does, so that adding and subtracting offers never drifts.

Mesos' JSON ``Resource`` list is the wire form a framework sees in an offer and
sends back in a ``TaskInfo``:

    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}},
     {"name": "ports", "type": "RANGES",
      "ranges": {"range": [{"begin": 31000, "end": 31009}]}}]

``from_mesos`` reads it and raises ``ResourceError`` (naming the field at fault)
for anything corral cannot honour, so the endpoint can answer 400 or send a
TASK_ERROR update instead of failing later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.api.quantity import format_bytes, format_cpu

MIB = 1024 * 1024
MAX_PORT = 65535
SCALARS = ("cpus", "mem", "disk")
PORTS = "ports"
# Mesos refuses scalars it cannot hold in its fixed-point form; far above any node.
MAX_SCALAR = 1e15

PortRanges = tuple[tuple[int, int], ...]


class ResourceError(ValueError):
    """A Mesos Resource list corral cannot honour: malformed, an unknown resource
    name, a wrong type, a negative or non-finite value, a bad port range.
    ``field`` is the JSON path at fault (``resources[1].scalar.value``); sending
    the same list again fails the same way."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _scalar(value: float) -> float:
    # Three decimals, as Mesos' fixed point; "+ 0.0" turns -0.0 into 0.0.
    return round(value, 3) + 0.0


def normalize_ports(ranges: Iterable[tuple[int, int]]) -> PortRanges:
    """Sorted, with overlapping and adjacent ranges merged."""
    merged: list[list[int]] = []
    for begin, end in sorted(ranges):
        if merged and begin <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return tuple((b, e) for b, e in merged)


def subtract_ports(have: PortRanges, take: PortRanges) -> PortRanges:
    """The ports of ``have`` not in ``take`` (both normalized)."""
    out: list[tuple[int, int]] = []
    for begin, end in have:
        for t_begin, t_end in take:
            if t_end < begin or t_begin > end:
                continue
            if t_begin > begin:
                out.append((begin, t_begin - 1))
            begin = t_end + 1
            if begin > end:
                break
        if begin <= end:
            out.append((begin, end))
    return tuple(out)


def port_count(ranges: PortRanges) -> int:
    return sum(end - begin + 1 for begin, end in ranges)


@dataclass(frozen=True, slots=True, init=False)
class Resources:
    """An amount of a node's resources. Immutable; arithmetic returns new values."""

    cpus: float
    mem: float
    disk: float
    ports: PortRanges

    def __init__(self, cpus: float = 0.0, mem: float = 0.0, disk: float = 0.0,
                 ports: PortRanges = ()) -> None:
        # Each field set once (a frozen dataclass's __init__ and a __post_init__
        # set them twice): the allocator makes many of these per round.
        setattr_ = object.__setattr__
        setattr_(self, "cpus", _scalar(cpus))
        setattr_(self, "mem", _scalar(mem))
        setattr_(self, "disk", _scalar(disk))
        if len(ports) > 1:
            ports = normalize_ports(ports)
        elif ports:
            ((begin, end),) = ports
            ports = ((begin, end),)
        setattr_(self, "ports", ports)

    def __add__(self, other: Resources) -> Resources:
        # Sums and differences are in fixed point, as Mesos keeps scalars: rounded
        # to six places, then to the three __post_init__ keeps, so tasks' 0.1 cpus
        # held and released one by one many times over add up to exactly what they
        # took, and an offer always fits the room it came from. Made without
        # __init__ (the values are as __post_init__ leaves them; ports merged only
        # when both sides hold some, each side's normalized already): the
        # allocator, the offer cycle and the pool add and subtract these for every
        # task, offer and round.
        if not (other.cpus or other.mem or other.disk or other.ports):
            return self  # (immutable, and already as the constructor leaves it)
        if not (self.cpus or self.mem or self.disk or self.ports):
            return other
        ports = other.ports if not self.ports else self.ports if not other.ports \
            else normalize_ports(self.ports + other.ports)
        return _made(round(round(self.cpus + other.cpus, 6), 3) + 0.0,
                     round(round(self.mem + other.mem, 6), 3) + 0.0,
                     round(round(self.disk + other.disk, 6), 3) + 0.0, ports)

    def __sub__(self, other: Resources) -> Resources:
        """What is left of self after other: scalars stop at zero, ports held by
        other are removed."""
        if not (other.cpus or other.mem or other.disk or other.ports):
            return self
        ports = self.ports
        if ports and other.ports:
            ports = normalize_ports(subtract_ports(ports, other.ports))
        return _made(round(max(round(self.cpus - other.cpus, 6), 0.0), 3) + 0.0,
                     round(max(round(self.mem - other.mem, 6), 0.0), 3) + 0.0,
                     round(max(round(self.disk - other.disk, 6), 0.0), 3) + 0.0, ports)

    def fits(self, within: Resources) -> bool:
        """Whether all of self is contained in ``within`` (every port too)."""
        return (self.cpus <= within.cpus and self.mem <= within.mem
                and self.disk <= within.disk
                and not subtract_ports(self.ports, within.ports))

    def is_empty(self) -> bool:
        return not (self.cpus or self.mem or self.disk or self.ports)

    def dominant_share(self, total: Resources) -> float:
        """The largest fraction of ``total`` this holds in any scalar (DRF's
        dominant share). Ports are left out, as Mesos' sorter counts scalars only."""
        shares = (mine / whole for mine, whole in
                  ((self.cpus, total.cpus), (self.mem, total.mem), (self.disk, total.disk))
                  if whole > 0)
        return max(shares, default=0.0)

    @classmethod
    def sum(cls, items: Iterable[Resources]) -> Resources:
        total = cls()
        for item in items:
            total = total + item
        return total

    @classmethod
    def from_quantities(cls, cpu_millis: int, memory_bytes: int, disk_bytes: int,
                        ports: PortRanges = ()) -> Resources:
        """From the scheduler's units (millicores, bytes), rounded down: a node
        never offers a fraction of a MiB it does not have."""
        return cls(cpu_millis / 1000, math.floor(memory_bytes * 1000 / MIB) / 1000,
                   math.floor(disk_bytes * 1000 / MIB) / 1000, ports)

    def requests(self) -> dict[str, str]:
        """As Kubernetes resource requests (a pod's or an Alloc's), rounded up."""
        out = {"cpu": format_cpu(math.ceil(self.cpus * 1000 - 1e-9)),
               "memory": format_bytes(math.ceil(self.mem * MIB - 1e-6))}
        if self.disk:
            out["ephemeral-storage"] = format_bytes(math.ceil(self.disk * MIB - 1e-6))
        return out

    def to_mesos(self, role: str | None = None) -> list[dict[str, Any]]:
        """Mesos' JSON Resource list. With ``role``, each resource carries
        ``allocation_info`` as Mesos sets it for MULTI_ROLE frameworks."""
        out: list[dict[str, Any]] = [
            {"name": name, "type": "SCALAR", "scalar": {"value": getattr(self, name)}}
            for name in SCALARS if getattr(self, name)]
        if self.ports:
            out.append({"name": PORTS, "type": "RANGES", "ranges": {"range": [
                {"begin": b, "end": e} for b, e in self.ports]}})
        if role is not None:
            for item in out:
                item["allocation_info"] = {"role": role}
        return out

    @classmethod
    def from_mesos(cls, items: object, field: str = "resources") -> Resources:
        """Read a Mesos JSON Resource list; resources of one name add up (Mesos
        merges them). Raises ResourceError for what corral cannot honour."""
        if not isinstance(items, list):
            raise ResourceError(field, "must be a list of Resource objects")
        amounts = dict.fromkeys(SCALARS, 0.0)
        ports: list[tuple[int, int]] = []
        for i, item in enumerate(items):
            at = f"{field}[{i}]"
            name = _checked_resource(item, at)
            if name == PORTS:
                ports.extend(_ranges(item, at))
            else:
                amounts[name] += _scalar_value(item, at)
        resources = cls(amounts["cpus"], amounts["mem"], amounts["disk"], tuple(ports))
        total_ports = port_count(resources.ports)
        if total_ports != sum(e - b + 1 for b, e in ports):
            raise ResourceError(field, "port ranges overlap")
        return resources


NOTHING = Resources()  # (a default to read with, rather than one made per lookup)

_new = object.__new__
_set = object.__setattr__


def _made(cpus: float, mem: float, disk: float, ports: PortRanges) -> Resources:
    """A Resources of values already as __post_init__ leaves them."""
    made: Resources = _new(Resources)
    _set(made, "cpus", cpus)
    _set(made, "mem", mem)
    _set(made, "disk", disk)
    _set(made, "ports", ports)
    return made


def _checked_resource(item: object, at: str) -> str:
    """The resource's name, after checking what all resources share."""
    if not isinstance(item, Mapping):
        raise ResourceError(at, "must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ResourceError(f"{at}.name", "is required")
    if name not in SCALARS and name != PORTS:
        raise ResourceError(f"{at}.name",
                            f"unknown resource {name!r}: corral offers cpus, mem, disk and ports")
    kind = "RANGES" if name == PORTS else "SCALAR"
    if item.get("type") != kind:
        raise ResourceError(f"{at}.type", f"{name} must have type {kind}")
    if item.get("reservations") or item.get("reservation"):
        raise ResourceError(f"{at}.reservations", "reserved resources are not supported")
    if name == "disk" and item.get("disk"):
        raise ResourceError(f"{at}.disk", "persistent volumes and disk sources are not supported")
    return name


def _scalar_value(item: Mapping[str, Any], at: str) -> float:
    scalar = item.get("scalar")
    value = scalar.get("value") if isinstance(scalar, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResourceError(f"{at}.scalar.value", "must be a number")
    if not math.isfinite(value) or value < 0 or value > MAX_SCALAR:
        raise ResourceError(f"{at}.scalar.value",
                            f"must be a finite number from 0 to {MAX_SCALAR:g}, not {value}")
    return float(value)


def _ranges(item: Mapping[str, Any], at: str) -> list[tuple[int, int]]:
    ranges = item.get("ranges")
    entries = ranges.get("range") if isinstance(ranges, Mapping) else None
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise ResourceError(f"{at}.ranges.range", "must be a list of {begin, end}")
    out: list[tuple[int, int]] = []
    for j, entry in enumerate(entries):
        where = f"{at}.ranges.range[{j}]"
        if not isinstance(entry, Mapping):
            raise ResourceError(where, "must be an object with begin and end")
        begin, end = _port(entry.get("begin")), _port(entry.get("end"))
        if begin is None or end is None:
            raise ResourceError(where, "begin and end must be integers")
        if not 0 <= begin <= end <= MAX_PORT:
            raise ResourceError(where, f"must satisfy 0 <= begin <= end <= {MAX_PORT}, "
                                       f"not {begin}-{end}")
        out.append((begin, end))
    return out


def _port(value: object) -> int | None:
    """An integer, or its decimal string (proto3's JSON form of a uint64)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
        return int(value)
    return None
