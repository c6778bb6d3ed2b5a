"""Directories only their owner may read: the master's data dir (state.db, the
CA and serving keys, tokens, kubeconfigs) and the agent's state.

Pods run as other users on the same host, so what the master and the agent
keep must not be readable by them. Each is created 0700 and, at every start,
tightened: a tree left looser (an older corral, a copy, a umask of 022) loses
its group and other bits — files 0600 at most, directories 0700 at most.
``search_only`` directories keep only the others' search bit (0711): a pod may
walk through to what it is handed by path, and list nothing.

A directory can hold another component's: `corral up` keeps its agents' state
under the master's data dir. The one who secures such a directory marks it
(``mark_self_secured``), and ``tighten`` of an enclosing tree leaves it to them:
an agent's pods' working directories are theirs (group bits included), and the
directories above them only searchable.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE = 0o700
SEARCH_ONLY = 0o711
SELF_SECURED = ".secured-by-owner"


def private_dir(path: Path, mode: int = PRIVATE) -> Path:
    """Create ``path`` (parents as the umask has them) and make it exactly ``mode``."""
    path.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != mode:
        os.chmod(path, mode)
    return path


def closed_ancestor(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that other users may not pass
    through (no search bit for others), or None when every one lets them."""
    for parent in reversed(path.resolve().parents):
        if not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def mark_self_secured(path: Path) -> None:
    """``path`` is secured by whoever calls this: enclosing ``tighten`` skips it."""
    marker = path / SELF_SECURED
    if not marker.exists():
        marker.touch(mode=0o600)


def tighten(root: Path, *, skip: Iterable[Path] = (), root_mode: int | None = None) -> int:
    """Take group and other bits off everything under ``root`` (root itself
    included), not descending into ``skip`` nor into directories marked
    self-secured; symlinks are left alone. ``root_mode`` is what ``root`` itself
    is left as instead (e.g. SEARCH_ONLY), set in one chmod: never a moment at
    0700 in which the pods that pass through it are shut out, nor a warning at
    every start for a root already so. Returns how many entries were changed
    (logged, since it means they were exposed)."""
    skipped = {p.resolve() for p in skip}
    changed = _strip(root, root_mode, follow=True)  # the root named, even through a symlink
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if (here / d).resolve() not in skipped
                       and not (here / d / SELF_SECURED).exists()]
        for entry in (*(here / d for d in dirnames), *(here / f for f in filenames)):
            changed += _strip(entry)
    if changed:
        log.warning("tightened permissions path=%s entries=%d", root, changed)
    return changed


def _strip(path: Path, mode: int | None = None, *, follow: bool = False) -> int:
    """Make ``path`` ``mode``, or (None) take its group and other bits off."""
    try:
        st = path.stat() if follow else path.lstat()
    except FileNotFoundError:
        return 0  # gone meanwhile (a WAL file, a temp file)
    if stat.S_ISLNK(st.st_mode):
        return 0
    wanted = stat.S_IMODE(st.st_mode) & ~0o077 if mode is None else mode
    if wanted == stat.S_IMODE(st.st_mode):
        return 0
    os.chmod(path, wanted)
    return 1
