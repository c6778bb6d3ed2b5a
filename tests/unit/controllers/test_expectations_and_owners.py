"""Expectations (no over-creation before the cache catches up) and the
adopt / release classification of controller references."""

from __future__ import annotations

from corral.controllers.expectations import Expectations
from corral.controllers.owners import classify, selector_of
from corral.objects import Obj


def test_expectations_wait_for_every_observation() -> None:
    now = [0.0]
    e = Expectations(ttl=10, clock=lambda: now[0])
    assert e.satisfied("k")
    e.expect_creations("k", 2)
    e.expect_deletions("k", ["u1"])
    assert not e.satisfied("k")
    e.creation_observed("k")
    e.creation_observed("k")
    assert not e.satisfied("k")
    e.deletion_observed("k", "u1")
    assert e.satisfied("k")


def test_expectations_expire() -> None:
    now = [0.0]
    e = Expectations(ttl=10, clock=lambda: now[0])
    e.expect_creations("k", 1)
    now[0] = 11.0
    assert e.satisfied("k")


def obj(name: str, labels: dict[str, str], owner: str | None = None,
        deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "uid": name, "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet",
                                    "name": owner}]
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": meta}


def test_classify() -> None:
    owner = {"metadata": {"uid": "rs"}, "spec": {"selector": {"matchLabels": {"app": "x"}}}}
    claim = classify([obj("mine", {"app": "x"}, "rs"), obj("drifted", {"app": "y"}, "rs"),
                      obj("orphan", {"app": "x"}), obj("theirs", {"app": "x"}, "other"),
                      obj("orphan-deleting", {"app": "x"}, deleting=True),
                      obj("unrelated", {"app": "y"})], owner, selector_of(owner))
    assert [o["metadata"]["name"] for o in claim.owned] == ["mine"]
    assert [o["metadata"]["name"] for o in claim.release] == ["drifted"]
    assert [o["metadata"]["name"] for o in claim.adopt] == ["orphan"]


def test_empty_selector_selects_nothing() -> None:
    owner = {"metadata": {"uid": "rs"}, "spec": {"selector": {}}}
    assert selector_of(owner) is None
    assert classify([obj("orphan", {"app": "x"})], owner, None).adopt == []
