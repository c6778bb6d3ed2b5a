"""Persistent volumes for a process runtime: a directory the agent keeps.

A pod volume ``persistentVolumeClaim: {claimName: data-web-0}`` (what a
StatefulSet's volumeClaimTemplates give each ordinal) is the directory
``<state-dir>/volumes/<namespace>/<claimName>`` on this node. It is created on
first use and never removed with the pod, so the pod recreated under the same
name on the same node finds its data again. Processes share the node's
filesystem, so a mount cannot put it at ``mountPath``; the container sees it as

    <working dir>/<mountPath without its leading "/">   a symlink (only in the
                                                         pod's own working dir)
    $CORRAL_VOLUME_<NAME>                               the absolute path

(NAME: the volume's name upper-cased, "-" and "." as "_"). A claim directory
is given, when created, to the user of the container that first mounts it
(group: the pod's fsGroup, set-gid, as Kubernetes applies fsGroup to a
volume), and its parents are search-only (sandbox.py): a pod reaches its claim
by path but lists nothing.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from corral.agent.run_as import fs_group
from corral.agent.runtime.base import RunAs
from corral.agent.sandbox import own_dir
from corral.objects import Obj, namespace_of, spec
from corral.private_files import SEARCH_ONLY, private_dir

VOLUMES_DIR = "volumes"


class VolumeError(ValueError):
    """A claim or mount path that would leave its directory."""


def env_name(volume: str) -> str:
    return "CORRAL_VOLUME_" + volume.upper().replace("-", "_").replace(".", "_")


def kept_dirs(pod: Obj, root: Path) -> dict[str, Path]:
    """Volume name → kept directory, for the pod's claim volumes."""
    dirs: dict[str, Path] = {}
    for volume in spec(pod).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            if "/" in claim or claim in (".", ".."):
                raise VolumeError(f"claimName {claim!r} is not a name")
            dirs[str(volume.get("name"))] = root / namespace_of(pod) / claim
    return dirs


def mount_claims(pod: Obj, container: Obj, root: Path, own_working_dir: Path | None,
                 run_as: RunAs | None = None) -> dict[str, str]:
    """Create the kept directories the container mounts, link them into its own
    working dir (when it has one), and return their environment variables."""
    owner = None
    if run_as is not None:
        group = fs_group(pod)
        owner = (run_as.uid, run_as.gid if group is None else group,
                 0o770 if group is None else 0o2770)
    try:
        return _mount_claims(kept_dirs(pod, root), container, own_working_dir, owner)
    except OSError as err:
        raise VolumeError(f"volume directory: {err}") from err


def _mount_claims(dirs: dict[str, Path], container: Obj, own_working_dir: Path | None,
                  owner: tuple[int, int, int] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        kept = dirs.get(str(mount.get("name")))
        if kept is None:
            continue
        if not kept.is_dir():
            private_dir(kept.parent.parent, SEARCH_ONLY)
            private_dir(kept.parent, SEARCH_ONLY)
            kept.mkdir()
            if owner is not None:
                own_dir(kept, *owner)
        env[env_name(str(mount.get("name")))] = str(kept.resolve())
        if own_working_dir is not None:
            _link(own_working_dir, str(mount.get("mountPath") or ""), kept.resolve())
    return env


def _link(working_dir: Path, mount_path: str, target: Path) -> None:
    relative = PurePosixPath(mount_path.lstrip("/"))
    if not relative.parts or ".." in relative.parts:
        raise VolumeError(f"mountPath {mount_path!r} cannot be placed in the working dir")
    link = working_dir / relative
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)
