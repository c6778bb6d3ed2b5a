"""Directories only their owner may read: the master's data dir (state.db, the
CA and serving keys, tokens, kubeconfigs) and the agent's state.

Pods run as other users on the same host, so what the master and the agent
keep must not be readable by them. Each is created 0700 and, at every start,
tightened: a tree left looser (an older corral, a copy, a umask of 022) loses
its group and other bits — files 0600 at most, directories 0700 at most.
``search_only`` directories keep only the others' search bit (0711): a pod may
walk through to what it is handed by path, and list nothing.
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


def private_dir(path: Path, mode: int = PRIVATE) -> Path:
    """Create ``path`` (parents as the umask has them) and make it exactly ``mode``."""
    path.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != mode:
        os.chmod(path, mode)
    return path


def tighten(root: Path, *, skip: Iterable[Path] = ()) -> int:
    """Take group and other bits off everything under ``root`` (root itself
    included), not descending into ``skip``; symlinks are left alone. Returns
    how many entries were changed (logged, since it means they were exposed)."""
    skipped = {p.resolve() for p in skip}
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if (here / d).resolve() not in skipped]
        for entry in (here, *(here / f for f in filenames)):
            changed += _strip(entry)
    if changed:
        log.warning("tightened permissions path=%s entries=%d", root, changed)
    return changed


def _strip(path: Path) -> int:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0  # gone meanwhile (a WAL file, a temp file)
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077:
        return 0
    os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
    return 1
