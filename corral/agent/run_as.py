"""Whom a pod's containers run as on this node.

The pod's and the container's ``securityContext`` are merged as the kubelet
merges them (``DetermineEffectiveSecurityContext``): the container's
``runAsUser``, ``runAsGroup`` and ``runAsNonRoot`` override the pod's;
``supplementalGroups`` and ``fsGroup`` are the pod's only. What an image's
``USER`` gives a container elsewhere, the node's pod user (``corral agent
--pod-user``, ``corral-pod`` by default) gives it here:

    uid     runAsUser, else the pod user's uid
    gid     runAsGroup, else the primary group of the uid's entry in the node's
            /etc/passwd, else the pod user's gid (Kubernetes falls back to 0; a
            uid unknown to the node gets the unprivileged pod group instead)
    groups  the uid's groups in the node's /etc/group (supplementalGroupsPolicy
            Merge, Kubernetes' default; Strict leaves them out), then
            supplementalGroups, then fsGroup

``runAsNonRoot`` is checked with the kubelet's messages, and what cannot be
honoured (a non-root agent asked to change user) is refused the same way: the
container waits with reason CreateContainerConfigError and never starts.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from corral.agent.config import DEFAULT_POD_USER
from corral.agent.runtime.base import RunAs
from corral.client.clock import Clock, RealClock
from corral.objects import Obj, meta

MAX_ID = 2**31 - 1  # Kubernetes' bound for uids and gids
NAMED_USER_SECONDS = 5.0  # how long NamedUsers trusts what it looked up


class RunAsError(Exception):
    """The container cannot run as its securityContext asks (reported as the
    waiting reason CreateContainerConfigError; retrying does not help until the
    pod or the node changes)."""


@dataclass(frozen=True)
class NodeUsers:
    """What this agent can do about users: whether it may switch (it runs as
    root), its own ids, and the default for pods that name no user (None: they
    run as the agent's own user)."""

    can_switch: bool
    own: RunAs
    default: RunAs | None

    @property
    def image_user(self) -> RunAs:
        """Who a container without runAsUser runs as (an image's USER elsewhere)."""
        return self.default if self.default is not None else self.own


def resolve_user(value: str) -> RunAs:
    """``NAME``, ``UID`` or ``UID:GID`` on this node → its ids and groups; raises
    ValueError for a name the node does not know or an id out of range."""
    name, _, group = value.partition(":")
    if name.isdigit():
        uid = _bounded(int(name), "uid")
        try:
            entry: pwd.struct_passwd | None = pwd.getpwuid(uid)
        except KeyError:
            entry = None
    else:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ValueError(f"no user {name!r} on this node (scripts/install.sh creates "
                             f"{DEFAULT_POD_USER!r})") from None
        uid = entry.pw_uid
    gid = _bounded(int(group), "gid") if group.isdigit() else None
    if group and gid is None:
        raise ValueError(f"group {group!r} is not a number")
    if gid is None:
        gid = entry.pw_gid if entry is not None else uid
    groups = tuple(g for g in os.getgrouplist(entry.pw_name, gid) if g != gid) if entry else ()
    return RunAs(uid, gid, groups)


def node_users(pod_user: str | None) -> NodeUsers:
    """The agent's view, from ``--pod-user`` ("" or None: pods run as the agent).
    A non-root agent cannot switch, so it ignores the pod user."""
    can_switch = os.geteuid() == 0
    own = RunAs(os.geteuid(), os.getegid())
    default = resolve_user(pod_user) if pod_user and can_switch else None
    return NodeUsers(can_switch, own, default)


def _bounded(value: int, what: str) -> int:
    if not 0 <= value <= MAX_ID:
        raise ValueError(f"{what} {value} is out of range (0..{MAX_ID})")
    return value


def _int_field(context: Obj, name: str) -> int | None:
    value = context.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise RunAsError(f"securityContext.{name} {value!r} is not an id in 0..{MAX_ID}")
    return value


def _pod_desc(pod: Obj) -> str:
    """The kubelet's format.Pod: name_namespace(uid)."""
    m = meta(pod)
    return f"{m.get('name')}_{m.get('namespace') or 'default'}({m.get('uid')})"


def run_as_for(pod: Obj, container: Obj, users: NodeUsers) -> RunAs | None:
    """The user the container runs as; None when the agent leaves its own user
    untouched (it cannot switch, and the container asks nothing else)."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}
    explicit_uid = _int_field(sc, "runAsUser")
    if explicit_uid is None:
        explicit_uid = _int_field(pod_sc, "runAsUser")
    explicit_gid = _int_field(sc, "runAsGroup")
    if explicit_gid is None:
        explicit_gid = _int_field(pod_sc, "runAsGroup")
    non_root = sc.get("runAsNonRoot")
    if non_root is None:
        non_root = pod_sc.get("runAsNonRoot")
    _check_non_root(pod, container, bool(non_root), explicit_uid, users)
    return _switchable(_merge(pod_sc, explicit_uid, explicit_gid, users), users)


def run_as_for_alloc(alloc: Obj, users: NodeUsers) -> RunAs | None:
    """A task array's tasks: as a pod of the Job's template would run. The Job
    controller copies the template's pod securityContext to the Alloc's
    ``spec.securityContext`` and the container's to ``spec.task.securityContext``."""
    s = alloc.get("spec") or {}
    task = s.get("task") or {}
    pod = {"metadata": meta(alloc), "spec": {"securityContext": s.get("securityContext")}}
    container = {"name": task.get("name") or "task",
                 "securityContext": task.get("securityContext")}
    return run_as_for(pod, container, users)


def run_as_named(user: str, users: NodeUsers) -> RunAs | None:
    """A Mesos framework's task: the user the master allowed it (CommandInfo.user,
    else FrameworkInfo.user), a name or uid of this node; "" is the node's pod
    user, as for a pod that names none."""
    if not user:
        return _switchable(_merge({}, None, None, users), users)
    try:
        return _switchable(resolve_user(user), users)
    except ValueError as err:
        raise RunAsError(f"cannot run as user {user!r}: {err}") from None


class NamedUsers:
    """``run_as_named`` remembered per name for ``ttl`` seconds: a framework
    launches up to hundreds of tasks a second as one user, and each lookup reads
    the node's passwd and group databases. A change to them (a user added or
    removed) reaches launches within ``ttl``, as a pod's user would on its next
    start."""

    def __init__(self, users: NodeUsers, ttl: float = NAMED_USER_SECONDS,
                 clock: Clock | None = None) -> None:
        self.users, self.ttl, self.clock = users, ttl, clock or RealClock()
        self._known: dict[str, tuple[float, RunAs | None, str]] = {}  # until, user, error

    def get(self, user: str) -> RunAs | None:
        """As ``run_as_named`` (RunAsError when the node cannot run as ``user``)."""
        now = self.clock.monotonic()
        known = self._known.get(user)
        if known is None or known[0] <= now:
            try:
                known = (now + self.ttl, run_as_named(user, self.users), "")
            except RunAsError as err:
                known = (now + self.ttl, None, str(err))
            self._known[user] = known
        if known[2]:
            raise RunAsError(known[2])
        return known[1]


def _switchable(run_as: RunAs, users: NodeUsers) -> RunAs | None:
    """``run_as``, or None when it is the agent's own and the agent cannot switch."""
    if users.can_switch:
        return run_as
    if (run_as.uid, run_as.gid) != (users.own.uid, users.own.gid) or \
            set(run_as.groups) - {users.own.gid}:
        raise RunAsError(f"cannot run as {run_as.describe()}: the node agent runs as uid "
                         f"{users.own.uid} without the privilege to change user")
    return None


def _check_non_root(pod: Obj, container: Obj, non_root: bool, explicit_uid: int | None,
                    users: NodeUsers) -> None:
    if not non_root:
        return
    where = f'(pod: "{_pod_desc(pod)}", container: {container.get("name")})'
    if explicit_uid == 0:
        raise RunAsError(f"container's runAsUser breaks non-root policy {where}")
    if explicit_uid is None and users.image_user.uid == 0:
        raise RunAsError(f"container has runAsNonRoot and image will run as root {where}")


def _merge(pod_sc: Obj, uid: int | None, gid: int | None, users: NodeUsers) -> RunAs:
    image = users.image_user
    if uid is None:
        uid = image.uid
    entry = _passwd(uid)
    if gid is None:
        gid = entry.pw_gid if entry is not None else image.gid
    groups: list[int] = []
    if entry is not None and pod_sc.get("supplementalGroupsPolicy") != "Strict":
        groups += os.getgrouplist(entry.pw_name, gid)
    for extra in pod_sc.get("supplementalGroups") or []:
        groups.append(_group_id(extra, "supplementalGroups"))
    fs_group = _int_field(pod_sc, "fsGroup")
    if fs_group is not None:
        groups.append(fs_group)
    unique = tuple(dict.fromkeys(g for g in groups if g != gid))
    return RunAs(uid, gid, unique)


def _group_id(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise RunAsError(f"securityContext.{field} entry {value!r} is not an id in 0..{MAX_ID}")
    return value


def _passwd(uid: int) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(uid)
    except KeyError:
        return None


def fs_group(pod: Obj) -> int | None:
    """The pod's fsGroup: the group its shared directories belong to."""
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
