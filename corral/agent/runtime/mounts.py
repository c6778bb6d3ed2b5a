"""A container's own view of a few fixed paths: a private mount namespace with
read-only bind mounts, made by the shim for itself just before it starts the
command (which inherits it).

Processes of a process runtime share the node's filesystem, so a path every
pod expects at the same place — /var/run/secrets/kubernetes.io/serviceaccount,
where Kubernetes' in-cluster clients read their token — cannot be one directory
for all. Each shim (one per container instance) therefore:

    unshare(CLONE_NEWNS)                  a mount namespace of its own
    mount("/", MS_REC | MS_PRIVATE)       nothing it mounts reaches the host
    mkdir -p TARGET (on the host)         an empty mount point, once per node
    mount(SOURCE, TARGET, MS_BIND)        the pod's directory at the fixed path
    remount MS_BIND|MS_RDONLY|MS_NOSUID|MS_NODEV

A directory is bound, not its files, so the agent's atomic replacement of a
refreshed token (rename inside SOURCE) shows through. The shim must be able to
create mount namespaces (root, or CAP_SYS_ADMIN); where it cannot, the
container fails to start with a StartError naming the mount, rather than
running without the files it was promised.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


class MountError(OSError):
    """A bind mount the container needs could not be made."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise MountError(errno, f"{what}: {os.strerror(errno)}")


def private_binds(binds: Sequence[tuple[str, str]]) -> None:
    """Move this process into a new mount namespace holding ``binds``
    ((source dir, target path), read-only)."""
    if not binds:
        return
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare the mount namespace")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None),
           "make the mount namespace private")
    for source, target in binds:
        try:
            os.makedirs(target, mode=0o755, exist_ok=True)
        except OSError as err:
            raise MountError(err.errno or 0, f"mount point {target}: {err.strerror}") from err
        what = f"bind {source} at {target}"
        _check(libc.mount(source.encode(), target.encode(), None, MS_BIND, None), what)
        _check(libc.mount(None, target.encode(), None,
                          MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None),
               f"{what} read-only")
