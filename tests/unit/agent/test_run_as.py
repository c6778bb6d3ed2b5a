"""Whom a container runs as: securityContext merged as the kubelet merges it."""

from __future__ import annotations

import pwd

import pytest

from corral.agent.run_as import (
    NamedUsers,
    NodeUsers,
    RunAsError,
    resolve_user,
    run_as_for,
    run_as_for_alloc,
    run_as_named,
)
from corral.agent.runtime.base import RunAs
from corral.agent.sandbox import work_dir_owner
from corral.client.clock import FakeClock
from corral.objects import Obj

ROOT_NODE = NodeUsers(can_switch=True, own=RunAs(0, 0), default=RunAs(64000, 64000))
AS_ITSELF = NodeUsers(can_switch=True, own=RunAs(0, 0), default=None)
UNPRIVILEGED = NodeUsers(can_switch=False, own=RunAs(1234, 1234), default=None)
UNKNOWN_UID = 3_000_017  # no passwd entry on any sane node


def pod(pod_sc: Obj | None = None, container_sc: Obj | None = None) -> tuple[Obj, Obj]:
    container: Obj = {"name": "c"}
    if container_sc is not None:
        container["securityContext"] = container_sc
    spec: Obj = {"containers": [container]}
    if pod_sc is not None:
        spec["securityContext"] = pod_sc
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"}, "spec": spec}, container


def test_nothing_set_runs_as_the_node_pod_user() -> None:
    assert run_as_for(*pod(), ROOT_NODE) == RunAs(64000, 64000)


def test_container_overrides_pod() -> None:
    p, c = pod({"runAsUser": UNKNOWN_UID, "runAsGroup": 5}, {"runAsUser": UNKNOWN_UID + 1})
    assert run_as_for(p, c, ROOT_NODE) == RunAs(UNKNOWN_UID + 1, 5)


def test_unknown_uid_without_group_gets_the_pod_users_group() -> None:
    assert run_as_for(*pod({"runAsUser": UNKNOWN_UID}), ROOT_NODE) == \
        RunAs(UNKNOWN_UID, 64000)


def test_known_uid_gets_its_passwd_group_and_groups() -> None:
    nobody = pwd.getpwnam("nobody")
    run_as = run_as_for(*pod({"runAsUser": nobody.pw_uid}), ROOT_NODE)
    assert run_as is not None and run_as.gid == nobody.pw_gid


def test_supplemental_groups_and_fs_group_join_strict_drops_passwd_groups() -> None:
    p, c = pod({"runAsUser": 0, "supplementalGroups": [7, 8], "fsGroup": 9,
                "supplementalGroupsPolicy": "Strict"})
    assert run_as_for(p, c, ROOT_NODE) == RunAs(0, 0, (7, 8, 9))


def test_run_as_non_root_messages_are_the_kubelets() -> None:
    with pytest.raises(RunAsError, match=r"^container's runAsUser breaks non-root policy "
                       r'\(pod: "p_ns\(u-1\)", container: c\)$'):
        run_as_for(*pod({"runAsNonRoot": True}, {"runAsUser": 0}), ROOT_NODE)
    with pytest.raises(RunAsError, match=r"^container has runAsNonRoot and image will run as "
                       r'root \(pod: "p_ns\(u-1\)", container: c\)$'):
        run_as_for(*pod({"runAsNonRoot": True}), AS_ITSELF)
    # The container may lift the pod's requirement, and a non-root default passes.
    assert run_as_for(*pod({"runAsNonRoot": True}, {"runAsNonRoot": False}), AS_ITSELF)
    assert run_as_for(*pod({"runAsNonRoot": True}), ROOT_NODE) == RunAs(64000, 64000)


def test_out_of_range_ids_are_refused() -> None:
    with pytest.raises(RunAsError, match="runAsUser"):
        run_as_for(*pod({"runAsUser": -1}), ROOT_NODE)
    with pytest.raises(RunAsError, match="supplementalGroups"):
        run_as_for(*pod({"supplementalGroups": [2**31]}), ROOT_NODE)


def test_an_unprivileged_agent_runs_pods_as_itself_or_refuses() -> None:
    assert run_as_for(*pod(), UNPRIVILEGED) is None
    assert run_as_for(*pod({"runAsUser": 1234}), UNPRIVILEGED) is None
    with pytest.raises(RunAsError, match="without the privilege to change user"):
        run_as_for(*pod({"runAsUser": 1000}), UNPRIVILEGED)


def test_resolve_user() -> None:
    nobody = pwd.getpwnam("nobody")
    assert resolve_user("nobody").uid == nobody.pw_uid
    assert resolve_user(f"{UNKNOWN_UID}:77") == RunAs(UNKNOWN_UID, 77)
    assert resolve_user(str(UNKNOWN_UID)) == RunAs(UNKNOWN_UID, UNKNOWN_UID)
    with pytest.raises(ValueError, match="no user"):
        resolve_user("no-such-user-here")


def test_work_dir_owner() -> None:
    one = [RunAs(1000, 1000), RunAs(1000, 1000)]
    assert work_dir_owner(one, None) == (1000, 1000, 0o750)
    assert work_dir_owner(one, 2000) == (1000, 2000, 0o2770)
    assert work_dir_owner([RunAs(1000, 1), RunAs(1001, 1)], None) == (0, 0, 0o1777)


def test_an_alloc_runs_as_its_templates_context_and_a_framework_task_as_named() -> None:
    alloc: Obj = {"metadata": {"name": "a", "namespace": "ns", "uid": "u-2"},
                  "spec": {"securityContext": {"runAsUser": UNKNOWN_UID, "fsGroup": 5},
                           "task": {"name": "t", "securityContext": {"runAsGroup": 7}}}}
    assert run_as_for_alloc(alloc, ROOT_NODE) == RunAs(UNKNOWN_UID, 7, (5,))
    assert run_as_for_alloc({"metadata": {}, "spec": {"task": {}}}, ROOT_NODE) == \
        RunAs(64000, 64000)
    nobody = pwd.getpwnam("nobody")
    assert run_as_named("nobody", ROOT_NODE).uid == nobody.pw_uid  # type: ignore[union-attr]
    assert run_as_named("", ROOT_NODE) == RunAs(64000, 64000)
    with pytest.raises(RunAsError, match="cannot run as user 'no-such-user-here'"):
        run_as_named("no-such-user-here", ROOT_NODE)
    with pytest.raises(RunAsError, match="without the privilege to change user"):
        run_as_named("nobody", UNPRIVILEGED)


def test_a_framework_tasks_user_is_looked_up_again_once_its_lookup_is_old() -> None:
    """NamedUsers: what run_as_named says, kept ttl seconds per name (refusals too)."""
    clock = FakeClock()
    named = NamedUsers(ROOT_NODE, ttl=5.0, clock=clock)
    first = named.get("")
    assert first == run_as_named("", ROOT_NODE) == RunAs(64000, 64000)
    clock.advance(4.9)
    assert named.get("") is first  # not looked up again
    assert named.get("0") == RunAs(0, 0)
    clock.advance(0.2)
    again = named.get("")
    assert again == first and again is not first
    refusing = NamedUsers(UNPRIVILEGED, clock=clock)
    for _ in range(2):
        with pytest.raises(RunAsError, match="cannot run as user 'nobody-here-at-all'"):
            refusing.get("nobody-here-at-all")
