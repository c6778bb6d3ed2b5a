"""Deployment pure parts: template hash and equality, proportional scaling,
revisions and undo, conditions, and what `rollout status` prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from corral.cli.rollout import RolloutFailed, status_message
from corral.controllers.deployment.progress import (
    calculate_status,
    condition,
    is_complete,
    rollout_conditions,
)
from corral.controllers.deployment.rollback import (
    REVISION,
    reused_annotations,
    rollback_target,
    templates_equal,
    undo_patch,
)
from corral.controllers.deployment.sync import proportional_sizes, template_hash
from corral.objects import Obj

NOW = datetime(2025, 1, 1, tzinfo=UTC)
TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "v1"}]}}


def test_hash_is_stable_and_ignores_its_own_label() -> None:
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": "zzz"}},
                "spec": TEMPLATE["spec"]}
    assert template_hash(TEMPLATE) == template_hash(labelled)
    assert template_hash(TEMPLATE) != template_hash(TEMPLATE, collision_count=1)
    other = {"metadata": TEMPLATE["metadata"], "spec": {"containers": [{"name": "c",
                                                                        "image": "v2"}]}}
    assert template_hash(TEMPLATE) != template_hash(other)
    assert set(template_hash(TEMPLATE)) <= set("bcdfghjkmnpqrstvwxz2456789")


def test_templates_equal_ignores_empty_values() -> None:
    noisy = {"metadata": {"labels": {"app": "web"}, "annotations": {}},
             "spec": {"containers": [{"name": "c", "image": "v1", "env": []}],
                      "nodeSelector": None}}
    assert templates_equal(TEMPLATE, noisy)


@pytest.mark.parametrize(("sizes", "delta", "expected"), [
    ([3, 1], 4, [6, 2]), ([3, 1], -2, [1, 1]), ([2, 2], 1, [3, 2]), ([0, 0], 3, [3, 0]),
    ([1, 5], -6, [0, 0]), ([5], 2, [7]),
])
def test_proportional_sizes(sizes: list[int], delta: int, expected: list[int]) -> None:
    result = proportional_sizes(sizes, delta)
    assert result == expected
    assert sum(result) == max(sum(sizes) + delta, 0)


def rs(revision: int, image: str) -> Obj:
    return {"metadata": {"name": f"web-{revision}", "annotations": {REVISION: str(revision)}},
            "spec": {"template": {"metadata": {"labels": {"app": "web",
                                                          "pod-template-hash": f"h{revision}"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def test_rollback_target_and_patch() -> None:
    rses = [rs(1, "v1"), rs(3, "v3"), rs(2, "v2")]
    assert rollback_target(rses, 0)["metadata"]["name"] == "web-2"
    assert rollback_target(rses, 1)["metadata"]["name"] == "web-1"
    patch = undo_patch({"metadata": {}}, rses[0])
    assert patch == [{"op": "replace", "path": "/spec/template", "value": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "v1"}]}}}]


def test_reused_rs_gets_next_revision_and_keeps_history() -> None:
    annotations = reused_annotations(rs(1, "v1"), 4)
    assert annotations[REVISION] == "4"
    assert annotations["deployment.kubernetes.io/revision-history"] == "1"


def deployment(replicas: int = 3, generation: int = 2, status: Obj | None = None) -> Obj:
    return {"metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": 60},
            "status": status or {}}


def rs_status(replicas: int, available: int, ready: int | None = None) -> Obj:
    return {"spec": {"replicas": replicas},
            "status": {"replicas": replicas, "availableReplicas": available,
                       "readyReplicas": available if ready is None else ready}}


def test_status_counts_and_availability() -> None:
    old, new = rs_status(1, 1), rs_status(3, 2)
    status = calculate_status(deployment(), [old, new], new, 1, NOW)
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"],
            status["unavailableReplicas"]) == (4, 3, 3, 1)
    assert condition(status["conditions"], "Available")["status"] == "True"  # type: ignore[index]
    assert not is_complete(deployment(), status)


def test_progressing_then_complete_then_timeout() -> None:
    d = deployment(status={"replicas": 3, "updatedReplicas": 1, "availableReplicas": 0})
    status = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2,
              "availableReplicas": 1, "conditions": []}
    progressing = condition(rollout_conditions(d, status, "web-1", NOW), "Progressing")
    assert progressing is not None and progressing["reason"] == "ReplicaSetUpdated"
    done = {**status, "updatedReplicas": 3, "availableReplicas": 3}
    complete = condition(rollout_conditions(d, done, "web-1", NOW), "Progressing")
    assert complete is not None and complete["reason"] == "NewReplicaSetAvailable"
    stalled = deployment(status={**status, "conditions": [progressing]})
    later = NOW + timedelta(seconds=61)
    timed_out = condition(rollout_conditions(stalled, {**status, "conditions": [progressing]},
                                             "web-1", later), "Progressing")
    assert timed_out is not None
    assert (timed_out["status"], timed_out["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_rollout_status_messages() -> None:
    def d(**status: Any) -> Obj:
        return {"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": 3},
                "status": {"observedGeneration": 2, **status}}

    assert status_message({**d(), "status": {"observedGeneration": 1}})[0] == (
        "Waiting for deployment spec update to be observed...")
    assert status_message(d(updatedReplicas=1))[0].endswith(
        "1 out of 3 new replicas have been updated...")
    assert status_message(d(updatedReplicas=3, replicas=4))[0].endswith(
        "1 old replicas are pending termination...")
    assert status_message(d(updatedReplicas=3, replicas=3, availableReplicas=2))[0].endswith(
        "2 of 3 updated replicas are available...")
    assert status_message(d(updatedReplicas=3, replicas=3, availableReplicas=3)) == (
        'deployment "web" successfully rolled out', True)
    with pytest.raises(RolloutFailed):
        status_message(d(conditions=[{"type": "Progressing", "status": "False",
                                      "reason": "ProgressDeadlineExceeded"}]))
