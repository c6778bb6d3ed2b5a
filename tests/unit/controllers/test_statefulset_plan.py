"""The StatefulSet's pure planning: ordered creation, highest-first scale down,
the partitioned rolling update, Parallel, OnDelete, and status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from corral.controllers.history import REVISION_HASH
from corral.controllers.statefulset import locality
from corral.controllers.statefulset.plan import (
    Settings,
    ordinal_of,
    plan,
    settings_of,
    stateful_status,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def pod(ordinal: int, ready: bool = True, revision: str = "web-new", phase: str = "Running",
        deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"web-{ordinal}", "uid": f"u{ordinal}",
                            "labels": {REVISION_HASH: revision}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def settings(replicas: int = 3, parallel: bool = False, on_delete: bool = False,
             partition: int = 0, current: str = "web-new") -> Settings:
    return Settings(replicas, parallel, on_delete, partition, current, "web-new")


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_ordinals_are_read_from_names() -> None:
    assert ordinal_of("web", {"metadata": {"name": "web-12"}}) == 12
    assert ordinal_of("web", {"metadata": {"name": "web-api-1"}}) is None
    assert ordinal_of("web", {"metadata": {"name": "web-01"}}) is None


def test_ordered_ready_creates_one_at_a_time_waiting_for_ready() -> None:
    assert plan({}, settings()).create == [(0, "web-new")]
    assert plan({0: pod(0, ready=False)}, settings()).create == []  # web-1 waits for web-0
    assert plan({0: pod(0)}, settings()).create == [(1, "web-new")]
    assert plan({}, settings(parallel=True)).create == [(0, "web-new"), (1, "web-new"),
                                                        (2, "web-new")]


def test_a_failed_pod_is_deleted_to_be_recreated_under_its_name() -> None:
    failed = pod(0, phase="Failed")
    result = plan({0: failed, 1: pod(1)}, settings())
    assert result.delete == [failed] and result.create == []


def test_scale_down_removes_the_highest_ordinal_first_one_at_a_time() -> None:
    pods = {i: pod(i) for i in range(5)}
    assert names(plan(pods, settings(replicas=2)).delete) == ["web-4"]
    pods[4] = pod(4, deleting=True)
    assert plan(pods, settings(replicas=2)).delete == []  # waits for web-4 to go
    assert names(plan({i: pod(i) for i in range(5)}, settings(replicas=2, parallel=True)
                      ).delete) == ["web-4", "web-3", "web-2"]
    # OrderedReady does not scale down while a kept pod is unhealthy.
    unhealthy = {0: pod(0, ready=False), 1: pod(1), 2: pod(2)}
    assert plan(unhealthy, settings(replicas=1)).delete == []


def test_rolling_update_goes_from_the_highest_ordinal_down_to_the_partition() -> None:
    old = {i: pod(i, revision="web-old") for i in range(3)}
    assert names(plan(old, settings(current="web-old")).delete) == ["web-2"]
    old[2] = pod(2, ready=False)  # back at the new revision, not ready yet
    assert plan(old, settings(current="web-old")).delete == []
    old[2] = pod(2)
    assert names(plan(old, settings(current="web-old")).delete) == ["web-1"]
    # partition 2: ordinals below 2 stay at the old revision, also when recreated.
    partitioned = settings(partition=2, current="web-old")
    assert plan(old, partitioned).delete == []
    assert plan({0: pod(0, revision="web-old")}, partitioned).create == [(1, "web-old")]
    assert plan({i: pod(i, revision="web-old") for i in range(3)},
                settings(on_delete=True, current="web-old")).delete == []


def test_status_moves_the_current_revision_once_all_are_updated_and_ready() -> None:
    sts = {"metadata": {"generation": 2}, "spec": {"replicas": 2}}
    half = stateful_status(sts, [pod(0, revision="web-old"), pod(1)], settings(2, current="web-old"),
                           NOW)
    assert (half["currentRevision"], half["currentReplicas"], half["updatedReplicas"]) == (
        "web-old", 1, 1)
    done = stateful_status(sts, [pod(0), pod(1)], settings(2, current="web-old"), NOW)
    assert (done["currentRevision"], done["currentReplicas"], done["readyReplicas"],
            done["replicas"], done["observedGeneration"]) == ("web-new", 2, 2, 2, 2)


def test_claim_templates_become_per_ordinal_claim_volumes() -> None:
    from corral.controllers.statefulset.plan import claim_volumes

    sts = {"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}}
    volumes = claim_volumes(sts, "web-2", [{"name": "data", "emptyDir": {}},
                                           {"name": "tmp", "emptyDir": {}}])
    assert volumes == [{"name": "tmp", "emptyDir": {}}, {"name": "data", "persistentVolumeClaim": {
        "claimName": "data-web-2"}}]


# ---- locality: a re-created pod prefers the node holding its claims ---------------

def _sts_with_claims(annotation: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "default"}
    if annotation is not None:
        meta["annotations"] = {locality.CLAIM_NODES: annotation}
    return {"metadata": meta, "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}]}}


def test_bound_pods_update_the_record_and_gone_ones_stay_in_it() -> None:
    sts = _sts_with_claims('{"web-0": "node-a", "web-1": "node-b"}')
    pods = [{"metadata": {"name": "web-1"}, "spec": {"nodeName": "node-c"}},
            {"metadata": {"name": "web-2"}, "spec": {}}]  # not bound yet
    assert locality.observed(sts, pods) == {"web-0": "node-a", "web-1": "node-c"}
    assert locality.recorded(_sts_with_claims("not json")) == {}
    no_claims = {"metadata": {"name": "web"}, "spec": {}}
    assert locality.observed(no_claims, pods) == {}


def test_the_preference_joins_the_template_affinity() -> None:
    pod: dict[str, Any] = {"spec": {"affinity": {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [
                {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}}
    template_terms = pod["spec"]["affinity"]["nodeAffinity"][locality.PREFERRED]
    locality.prefer_node(pod, "node-a")
    terms = pod["spec"]["affinity"]["nodeAffinity"][locality.PREFERRED]
    assert [t["weight"] for t in terms] == [1, 100]
    assert terms[1]["preference"] == {"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}
    assert len(template_terms) == 1  # what the pod was built from is not changed


def test_max_unavailable_updates_several_at_once() -> None:
    old = {i: pod(i, revision="web-old") for i in range(5)}
    wide = Settings(5, False, False, 0, "web-old", "web-new", max_unavailable=2)
    assert names(plan(old, wide).delete) == ["web-4", "web-3"]
    old[4] = pod(4, ready=False)  # back at the new revision, not ready yet:
    assert plan(old, wide).delete == []  # OrderedReady waits for it, as Kubernetes does
    wide = Settings(5, True, False, 0, "web-old", "web-new", max_unavailable=2)
    # Parallel: one slot is taken by web-4, one is left
    assert names(plan(old, wide).delete) == ["web-3"]
    old[0] = pod(0, ready=False, revision="web-old")  # unhealthy below: no slot left
    assert plan(old, wide).delete == []
    partitioned = Settings(5, False, False, 3, "web-old", "web-new", max_unavailable=3)
    fresh = {i: pod(i, revision="web-old") for i in range(5)}
    assert names(plan(fresh, partitioned).delete) == ["web-4", "web-3"]


@pytest.mark.parametrize(("value", "replicas", "expected"), [
    (None, 4, 1), (3, 4, 3), ("50%", 5, 2), ("10%", 5, 1), ("100%", 4, 4)])
def test_max_unavailable_of_the_spec(value: Any, replicas: int, expected: int) -> None:
    rolling = {} if value is None else {"maxUnavailable": value}
    sts = {"spec": {"replicas": replicas, "updateStrategy": {"type": "RollingUpdate",
                                                             "rollingUpdate": rolling}}}
    assert settings_of(sts, "a", "b").max_unavailable == expected
