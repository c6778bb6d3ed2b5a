"""How the executor starts a task that runs as another user than itself.

The executor's own tasks go through ``os.posix_spawn`` (vfork and exec: nothing
is copied). A task with a user of its own — a task array's securityContext, a
framework's CommandInfo.user, or the node's unprivileged pod user — goes through
``subprocess.Popen`` with ``user``/``group``/``extra_groups``, as the shim starts
a pod's container: Popen changes them in the child after its chdir and before
exec (setuid in a vfork'd child would change the parent too, so it forks), and
reports a failed chdir, setuid or exec back as an OSError, which the executor
turns into the task's StartError.
"""

from __future__ import annotations

import os
import subprocess

from corral.agent.runtime.base import RunAs


def needs_switch(user: RunAs | None) -> bool:
    """Whether ``user`` is someone other than this process."""
    if user is None:
        return False
    return (user.uid, user.gid) != (os.geteuid(), os.getegid()) or bool(
        set(user.groups) - set(os.getgroups()) - {user.gid})


def prepare_cwd(cwd: str, user: RunAs | None) -> None:
    """A working directory that does not exist yet (a framework task's sandbox)
    is made, and given to the task's user: its own place to write."""
    if cwd in ("", "/") or os.path.isdir(cwd):
        return
    os.makedirs(os.path.dirname(cwd.rstrip("/")) or "/", exist_ok=True)
    os.mkdir(cwd, 0o700 if user is not None else 0o755)
    if user is not None:
        os.chown(cwd, user.uid, user.gid)


def spawn_as(command: list[str], env: dict[str, str], cwd: str, user: RunAs,
             stdin_fd: int, out_fd: int) -> subprocess.Popen[bytes]:
    """Start ``command`` as ``user`` in its own process group, stdout and stderr
    into ``out_fd``. The caller reaps it (the executor's SIGCHLD loop) and then
    sets ``returncode`` so that Popen never waits for it itself."""
    prepare_cwd(cwd, user)
    return subprocess.Popen(command, env=env, cwd=cwd or "/", stdin=stdin_fd, stdout=out_fd,
                            stderr=out_fd, close_fds=True, process_group=0, user=user.uid,
                            group=user.gid, extra_groups=list(user.groups))


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
