"""A pod's directories on the node, and who may use them.

    <state-dir>/            0711  the agent's: nothing listable to pods
      pods/                 0711  (pod uids cannot be listed, so not guessed)
        <pod uid>/          0711  root
          logs/             0700  root: the node's record of the containers
          work/             the pod's own working dir: its user's (below)
          resolv.conf       0644  read by the pod's processes
          ports.json        0600
      volumes/<ns>/<claim>  the claim's first user's, 0770 (fsGroup: 2770)
      sandboxes/            0711  framework tasks' sandboxes ($MESOS_SANDBOX)
        <alloc uid>/        0711  root
          <task>/           0700  the task's user's

Containers change user after they chdir into their working directory
(runtime/shim.py), so their own working directory is usable even where the
path to it is not; files they are handed by path (resolv.conf, volumes) need
the path to be searchable, which 0711 allows without letting a pod list what
else the agent keeps.

Whatever else the agent hands a pod by path (a ServiceAccount token, a
projected file) must be readable by the container's RunAs (run_as.py): owned by
its uid, or by its gid with group read, under a search-only parent.

The working directory is shared by the pod's containers: owned by their user
when they all run as one (group: fsGroup if set, else that user's group),
else root-owned 1777 (as /tmp) so each can write its own files. The agent
chowns only when it runs as root; otherwise everything is its own anyway.
"""

from __future__ import annotations

import os
from pathlib import Path

from corral.agent.runtime.base import RunAs
from corral.private_files import SEARCH_ONLY, mark_self_secured, private_dir, tighten

LOGS = "logs"


def secure_state_dir(state_dir: Path, pods_dir: Path, volumes_dir: Path,
                     sandboxes_dir: Path) -> None:
    """At agent start: the layout above, whatever an older agent or a copy left.
    Everything but the pods' and tasks' sandboxes and the volumes is the agent's alone."""
    private_dir(state_dir)
    tighten(state_dir, skip=[pods_dir, volumes_dir, sandboxes_dir], root_mode=SEARCH_ONLY)
    mark_self_secured(state_dir)  # a master's data dir holding it leaves it be
    for parent in (pods_dir, volumes_dir, sandboxes_dir):
        private_dir(parent, SEARCH_ONLY)
    for pod_dir in pods_dir.iterdir():
        if pod_dir.is_dir() and not pod_dir.is_symlink():
            tighten(pod_dir, skip=[pod_dir / "work", pod_dir / "resolv.conf"],
                    root_mode=SEARCH_ONLY)
    for namespace_dir in volumes_dir.iterdir():
        if namespace_dir.is_dir() and not namespace_dir.is_symlink():
            os.chmod(namespace_dir, SEARCH_ONLY)


def prepare_pod_dir(pod_dir: Path) -> None:
    private_dir(pod_dir.parent, SEARCH_ONLY)
    private_dir(pod_dir, SEARCH_ONLY)
    private_dir(pod_dir / LOGS)


def work_dir_owner(users: list[RunAs], fs_group: int | None) -> tuple[int, int, int]:
    """(uid, gid, mode) of the pod's shared working directory, for the users its
    containers run as."""
    uids = {u.uid for u in users}
    if len(uids) == 1:
        first = users[0]
        if fs_group is not None:
            return first.uid, fs_group, 0o2770
        return first.uid, first.gid, 0o750
    return 0, fs_group if fs_group is not None else 0, 0o1777


def own_dir(path: Path, uid: int, gid: int, mode: int) -> None:
    """Create ``path`` and give it to uid:gid with ``mode`` (as root; a non-root
    agent only creates it)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    stat = path.stat()
    if (stat.st_uid, stat.st_gid) != (uid, gid):
        os.chown(path, uid, gid)  # clears the set-id bits: the mode is set again below
        stat = path.stat()
    if stat.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
