"""Resources: arithmetic with port ranges, and Mesos' JSON Resource list both ways."""

from __future__ import annotations

import math
from typing import Any

import pytest

from corral.offers.resources import (
    ResourceError,
    Resources,
    normalize_ports,
    port_count,
    subtract_ports,
)


def scalar(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def ports(*ranges: tuple[Any, Any]) -> dict[str, Any]:
    return {"name": "ports", "type": "RANGES",
            "ranges": {"range": [{"begin": b, "end": e} for b, e in ranges]}}


def test_scalars_keep_three_decimals_so_sums_do_not_drift() -> None:
    total = Resources()
    for _ in range(10):
        total = total + Resources(cpus=0.1)
    assert total.cpus == 1.0
    assert (total - Resources(cpus=0.3)).cpus == 0.7
    assert Resources(cpus=0.12345).cpus == 0.123


def test_sums_and_differences_are_values_as_the_constructor_makes_them() -> None:
    """+ and - make their results without __init__: they must be the same values
    (equal, same hash, ports merged and sorted, no -0.0)."""
    a = Resources(cpus=0.3, mem=100, ports=((10, 12),))
    b = Resources(cpus=0.1, mem=28.5, ports=((13, 20), (5, 6)))
    total = a + b
    expected = Resources(cpus=0.4, mem=128.5, ports=((5, 6), (10, 20)))
    assert total == expected and hash(total) == hash(expected)
    assert repr(total) == repr(expected)
    assert a + Resources() == a and Resources() + b == b
    assert total - b == a and hash(total - b) == hash(a)
    less = a - Resources(cpus=1, mem=100)
    assert less == Resources(ports=((10, 12),)) and str(less.cpus) == "0.0"
    assert str(less.mem) == "0.0"
    assert Resources(ports=((1, 10),)) - Resources(ports=((3, 4),)) == Resources(
        ports=((1, 2), (5, 10)))
    assert Resources(cpus=0.3) - Resources(cpus=0.1) == Resources(cpus=0.2)


@pytest.mark.parametrize(("ranges", "normal"), [
    ([(5, 9), (1, 3)], ((1, 3), (5, 9))),
    ([(1, 3), (4, 9)], ((1, 9),)),  # adjacent ranges merge
    ([(1, 5), (3, 4), (2, 8)], ((1, 8),)),
    ([], ()),
])
def test_port_ranges_are_sorted_and_merged(ranges: list[tuple[int, int]],
                                           normal: tuple[tuple[int, int], ...]) -> None:
    assert normalize_ports(ranges) == normal
    assert Resources(ports=tuple(ranges)).ports == normal


@pytest.mark.parametrize(("have", "take", "left"), [
    (((1, 10),), ((3, 4),), ((1, 2), (5, 10))),
    (((1, 10),), ((1, 10),), ()),
    (((1, 10),), ((0, 1), (10, 12)), ((2, 9),)),
    (((1, 3), (7, 9)), ((2, 8),), ((1, 1), (9, 9))),
    (((1, 3),), ((5, 6),), ((1, 3),)),
])
def test_subtracting_ports(have: tuple[tuple[int, int], ...], take: tuple[tuple[int, int], ...],
                           left: tuple[tuple[int, int], ...]) -> None:
    assert subtract_ports(have, take) == left
    assert not subtract_ports(left, have)  # nothing appears that was not there


def test_subtraction_stops_at_zero_and_fits_checks_every_dimension() -> None:
    node = Resources(cpus=2, mem=1024, disk=100, ports=((31000, 31009),))
    task = Resources(cpus=0.5, mem=128, ports=((31002, 31002),))
    assert task.fits(node)
    left = node - task
    assert left == Resources(cpus=1.5, mem=896, disk=100, ports=((31000, 31001), (31003, 31009)))
    assert not task.fits(left)  # its port is gone
    assert not Resources(mem=2048).fits(node)
    assert (task - node) == Resources()
    assert (task - node).is_empty()
    assert not task.is_empty()
    assert Resources(ports=((80, 80),)).fits(Resources(ports=((1, 100),)))
    assert port_count(node.ports) == 10


def test_dominant_share_is_the_largest_scalar_fraction() -> None:
    total = Resources(cpus=10, mem=1000, disk=0, ports=((1, 100),))
    assert Resources(cpus=1, mem=400).dominant_share(total) == 0.4
    assert Resources(cpus=3, mem=100, disk=50).dominant_share(total) == 0.3  # no disk total
    assert Resources(ports=((1, 100),)).dominant_share(total) == 0.0  # ports do not count
    assert Resources(cpus=1).dominant_share(Resources()) == 0.0


def test_to_and_from_mesos_round_trip() -> None:
    res = Resources(cpus=1.5, mem=256, disk=10, ports=((31000, 31004), (31010, 31010)))
    wire = res.to_mesos()
    assert wire[0] == scalar("cpus", 1.5)
    assert wire[-1] == ports((31000, 31004), (31010, 31010))
    assert Resources.from_mesos(wire) == res
    with_role = res.to_mesos(role="analytics")
    assert all(item["allocation_info"] == {"role": "analytics"} for item in with_role)
    assert Resources.from_mesos(with_role) == res  # frameworks echo allocation_info back
    assert Resources().to_mesos() == []


def test_from_mesos_merges_resources_of_one_name_and_takes_string_ports() -> None:
    got = Resources.from_mesos([scalar("cpus", 1), scalar("cpus", 0.5), scalar("mem", 32),
                                ports(("31000", "31001")), ports((31005, 31005)),
                                {**scalar("mem", 1), "role": "*"}])
    assert got == Resources(cpus=1.5, mem=33, ports=((31000, 31001), (31005, 31005)))


@pytest.mark.parametrize(("items", "field", "words"), [
    ({"cpus": 1}, "resources", "must be a list"),
    (["cpus"], "resources[0]", "must be an object"),
    ([{"type": "SCALAR"}], "resources[0].name", "is required"),
    ([scalar("gpus", 1)], "resources[0].name", "unknown resource 'gpus'"),
    ([{"name": "cpus", "type": "RANGES", "ranges": {"range": []}}], "resources[0].type",
     "SCALAR"),
    ([scalar("mem", 1), {"name": "ports", "type": "SCALAR", "scalar": {"value": 1}}],
     "resources[1].type", "RANGES"),
    ([scalar("cpus", -1)], "resources[0].scalar.value", "finite number"),
    ([scalar("cpus", math.nan)], "resources[0].scalar.value", "finite number"),
    ([scalar("cpus", math.inf)], "resources[0].scalar.value", "finite number"),
    ([scalar("cpus", 1e300)], "resources[0].scalar.value", "finite number"),
    ([scalar("cpus", "1")], "resources[0].scalar.value", "must be a number"),
    ([scalar("cpus", True)], "resources[0].scalar.value", "must be a number"),
    ([{"name": "cpus", "type": "SCALAR"}], "resources[0].scalar.value", "must be a number"),
    ([ports((10, 5))], "resources[0].ranges.range[0]", "begin <= end"),
    ([ports((1, 70000))], "resources[0].ranges.range[0]", "65535"),
    ([ports((-1, 5))], "resources[0].ranges.range[0]", "begin <= end"),
    ([ports((1.5, 5))], "resources[0].ranges.range[0]", "integers"),
    ([ports(("x", 5))], "resources[0].ranges.range[0]", "integers"),
    ([{"name": "ports", "type": "RANGES"}], "resources[0].ranges.range", "list"),
    ([{"name": "ports", "type": "RANGES", "ranges": {"range": [5]}}],
     "resources[0].ranges.range[0]", "object"),
    ([ports((1, 5), (3, 8))], "resources", "overlap"),
    ([{**scalar("cpus", 1), "reservations": [{"type": "DYNAMIC"}]}],
     "resources[0].reservations", "not supported"),
    ([{**scalar("disk", 1), "disk": {"persistence": {"id": "v"}}}], "resources[0].disk",
     "not supported"),
])
def test_from_mesos_rejects_what_corral_cannot_honour(items: object, field: str,
                                                      words: str) -> None:
    with pytest.raises(ResourceError) as caught:
        Resources.from_mesos(items)
    assert caught.value.field == field
    assert words in caught.value.message
    assert str(caught.value).startswith(field + ": ")


def test_field_prefix_names_the_task() -> None:
    with pytest.raises(ResourceError) as caught:
        Resources.from_mesos([scalar("cpus", -1)], field="task_infos[2].resources")
    assert caught.value.field == "task_infos[2].resources[0].scalar.value"


def test_kubernetes_units_round_down_when_offered_and_up_when_requested() -> None:
    node = Resources.from_quantities(cpu_millis=1500, memory_bytes=1024**3 + 1,
                                     disk_bytes=512 * 1024**2 + 1000)
    assert node == Resources(cpus=1.5, mem=1024, disk=512.0)
    assert Resources.from_quantities(1, 1, 0).mem == 0.0
    assert Resources(cpus=0.25, mem=128).requests() == {"cpu": "250m", "memory": "128Mi"}
    assert Resources(cpus=2, mem=0.5, disk=1).requests() == {
        "cpu": "2", "memory": "512Ki", "ephemeral-storage": "1Mi"}
    odd = Resources(cpus=0.0015, mem=0.001).requests()
    assert odd == {"cpu": "2m", "memory": str(math.ceil(0.001 * 1024 * 1024))}
