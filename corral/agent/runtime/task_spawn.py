"""How the executor starts a task that runs as another user than itself.

A task with a user of its own — a task array's securityContext, a framework's
CommandInfo.user, or the node's unprivileged pod user — is started the way the
executor starts every task, ``os.posix_spawn`` (vfork and exec: nothing is
copied), with ``resetids``: for the spawn, the executor takes the user's ids as
its *real* ids and the user's groups as its own, keeping root as its effective
and saved ids; the child then sets its effective ids to the real ones before
exec (POSIX_SPAWN_RESETIDS), and exec makes the saved ids the same. The task
ends up with the user's uid, gid and groups in every slot and no capability;
the executor goes back to its own ids at once (it is single-threaded). A fork
per task (subprocess's user=) costs ~3× the spawn on a loaded node, which a
task array of 100,000 /bin/true cannot pay.

The lookup of the program on $PATH happens as the user, and the working
directory is entered only if the user may (the executor checks with
``os.access``, which uses the real ids, then enters it for the spawn), so a
program or a directory it may not reach is a start error, as for that user
anywhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from corral.agent.runtime.base import RunAs


def needs_switch(user: RunAs | None) -> bool:
    """Whether ``user`` is someone other than this process."""
    if user is None:
        return False
    return (user.uid, user.gid) != (os.geteuid(), os.getegid()) or bool(
        set(user.groups) - set(os.getgroups()) - {user.gid})


def prepare_cwd(cwd: str, user: RunAs | None, spare: str | None = None) -> bool:
    """A working directory that does not exist yet (a framework task's sandbox)
    is made, and given to the task's user: its own place to write. ``spare``: an
    ended task's sandbox of the same user and place, taken instead if empty.
    Returns whether the directory is new: only such a one is the task's alone."""
    if cwd in ("", "/"):
        return False
    mode = 0o700 if user is not None else 0o755
    if spare is not None and _take_empty(spare, cwd):
        if user is not None:
            os.chown(cwd, user.uid, user.gid)
        os.chmod(cwd, mode)  # whatever the last task made of it
        return True
    try:  # the common case first: a new task's sandbox in its Alloc's, one mkdir
        os.mkdir(cwd, mode)
    except FileExistsError:
        if os.path.isdir(cwd):
            return False
        raise
    except FileNotFoundError:
        os.makedirs(os.path.dirname(cwd.rstrip("/")) or "/", exist_ok=True)
        os.mkdir(cwd, mode)
    if user is not None:
        os.chown(cwd, user.uid, user.gid)
    return True


def _take_empty(spare: str, cwd: str) -> bool:
    """Rename ``spare`` to ``cwd`` if it is empty and ``cwd`` is not there. A task
    that wrote nothing in its sandbox leaves nothing to look at, and the next
    task's sandbox needs no new inode. Making directories by the thousand (and
    removing them with the Alloc) is costly on some file systems: on ext4
    without a journal each mkdir scans past every inode freed in the last minute
    (80–270 µs on this project's test machines); a rename does not."""
    if os.path.lexists(cwd):
        return False
    try:
        with os.scandir(spare) as entries:
            if next(entries, None) is not None:
                return False
        os.rename(spare, cwd)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def real_ids_of(user: RunAs) -> Iterator[None]:
    """Within: ``user``'s ids as this process's real ids, its groups as ours; the
    effective and saved ids stay root's, so nothing else changes for us."""
    groups = os.getgroups()
    ruid, rgid = os.getuid(), os.getgid()
    os.setgroups(list(user.groups))
    os.setresgid(user.gid, -1, -1)
    os.setresuid(user.uid, -1, -1)
    try:
        yield
    finally:
        os.setresuid(ruid, -1, -1)
        os.setresgid(rgid, -1, -1)
        os.setgroups(groups)


def start_error(exc: BaseException, command: list[str], cwd: str, user: RunAs | None) -> str:
    """The task's StartError message, in the words the shim uses for a container."""
    program = command[0] if command else ""
    if isinstance(exc, OSError) and exc.filename is None and user is not None:
        # Popen reports a failure between fork and exec without a file name:
        # with a user to become, that is setgroups/setgid/setuid.
        return f"setting user {user.describe()}: {exc.strerror or exc}"
    if isinstance(exc, OSError) and cwd not in ("", "/") and exc.filename == cwd:
        return f"chdir to {cwd!r}: {exc.strerror}"
    if isinstance(exc, (FileNotFoundError, PermissionError)) and "/" not in program:
        # A user other than root meets directories it may not search on $PATH.
        return f'exec: "{program}": executable file not found in $PATH'
    if isinstance(exc, OSError):
        return f'exec: "{program}": {(exc.strerror or str(exc)).lower()}'
    return f'exec: "{program}": no command given'
