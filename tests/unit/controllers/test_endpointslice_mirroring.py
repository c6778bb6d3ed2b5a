"""The mirroring rules on plain objects: which Endpoints are mirrored, what
their slices hold (per address type and ports, ready and not-ready addresses,
labels, annotations, owner), the limits, and the fewest writes."""

from __future__ import annotations

import copy
from typing import Any

from corral.controllers.endpointslice.mirroring import (
    LEADER_ANNOTATION,
    MIRRORING_CONTROLLER_NAME,
    mirror,
    plan_mirror,
    should_mirror,
)
from corral.controllers.endpointslice.plan import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SKIP_MIRROR_LABEL,
    Plan,
)

Obj = dict[str, Any]


def endpoints(*subsets: Obj, **meta: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "db", "namespace": "default", "uid": "ep-uid",
                         "labels": {"team": "data"},
                         "annotations": {"note": "external",
                                         "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                         **meta},
            "subsets": list(subsets)}


def subset(*ips: str, not_ready: tuple[str, ...] = (), port: int = 5432) -> Obj:
    return {"addresses": [{"ip": ip} for ip in ips],
            "notReadyAddresses": [{"ip": ip} for ip in not_ready],
            "ports": [{"name": "pg", "port": port, "protocol": "TCP"}]}


SELECTORLESS = {"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}}


def test_what_is_mirrored() -> None:
    assert should_mirror(endpoints(), SELECTORLESS)
    assert not should_mirror(endpoints(), None)
    assert not should_mirror(endpoints(), {"spec": {"selector": {"app": "db"}}})
    assert not should_mirror(endpoints(labels={SKIP_MIRROR_LABEL: "true"}), SELECTORLESS)
    assert not should_mirror(endpoints(annotations={LEADER_ANNOTATION: "{}"}), SELECTORLESS)


def test_the_mirrored_slice() -> None:
    out = mirror(endpoints(subset("10.0.0.1", not_ready=("10.0.0.2",)),
                           subset("fd00::1"), subset("10.0.0.3", port=6432)))
    assert out.invalid == out.over_capacity == 0
    by_type_port = {(k[0], s["ports"][0]["port"]): s for k, s in out.slices.items()}
    assert sorted(by_type_port) == [("IPv4", 5432), ("IPv4", 6432), ("IPv6", 5432)]
    eps = by_type_port[("IPv4", 5432)]
    assert eps["metadata"]["generateName"] == "db-"
    assert eps["metadata"]["labels"] == {"team": "data", SERVICE_NAME_LABEL: "db",
                                         MANAGED_BY_LABEL: MIRRORING_CONTROLLER_NAME}
    assert eps["metadata"]["annotations"] == {"note": "external"}
    assert eps["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Endpoints", "name": "db", "uid": "ep-uid",
        "controller": True, "blockOwnerDeletion": True}]
    assert eps["addressType"] == "IPv4"
    assert eps["endpoints"] == [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                                {"addresses": ["10.0.0.2"], "conditions": {"ready": False}}]
    assert by_type_port[("IPv6", 5432)]["endpoints"][0]["addresses"] == ["fd00::1"]


def test_invalid_and_too_many_addresses_are_skipped() -> None:
    out = mirror(endpoints(subset("10.0.0.1", "not-an-ip", "10.0.0.2", "10.0.0.3")), limit=2)
    assert (out.invalid, out.over_capacity) == (1, 1)
    [eps] = out.slices.values()
    assert [e["addresses"] for e in eps["endpoints"]] == [["10.0.0.1"], ["10.0.0.2"]]


def test_writes() -> None:
    wanted = mirror(endpoints(subset("10.0.0.1"))).slices
    created = plan_mirror(wanted, [])
    assert (len(created.create), created.update, created.delete) == (1, [], [])
    stored = copy.deepcopy(created.create[0])
    stored["metadata"]["name"] = "db-abcde"
    del stored["metadata"]["generateName"]
    assert plan_mirror(wanted, [stored]) == Plan()
    duplicate = {**copy.deepcopy(stored), "metadata": {**stored["metadata"], "name": "db-zzzzz"}}
    assert [s["metadata"]["name"] for s in plan_mirror(wanted, [stored, duplicate]).delete] == [
        "db-zzzzz"]
    changed = plan_mirror(mirror(endpoints(subset("10.0.0.9"))).slices, [stored])
    assert (changed.create, changed.delete) == ([], [])
    assert [(s["metadata"]["name"], s["endpoints"][0]["addresses"]) for s in changed.update] == [
        ("db-abcde", ["10.0.0.9"])]
    assert [s["metadata"]["name"] for s in plan_mirror({}, [stored]).delete] == ["db-abcde"]
