"""The per-container supervisor (the "shim"), like containerd's.

One runs per container instance and outlives the agent, so an agent restart (or
crash) never touches running containers. It is normally forked, already
imported, by the node's shim launcher (launcher.py); ``python -m
corral.agent.runtime.shim STATE_DIR`` is the fallback that starts a fresh
interpreter for one instance:

    launcher ──fork──▶ setsid ──fork, exits──▶ shim (own session, child subreaper)
                                                 │ Popen, own process group,
                                                 │ joins the cgroup before exec
                                                 ▼
                                              command ──stdout/stderr pipes──▶ LogWriter

A shim is a tiny synchronous supervisor, not a service: one ``selectors`` loop
over the command's two pipes and a self-pipe that signals are written to
(``signal.set_wakeup_fd``); children are reaped with ``os.waitpid``. No asyncio
(that is for the agent's services): an event loop per container would cost
memory and start time in every one of hundreds of forked shims.

The state directory is the only channel between agent and shim:

    launch.json   ContainerLaunch (written by the agent)
    cgroup.json   the instance's ContainerCgroup, or null for rlimits
    shim.pid      {"pid", "start"} of the detached shim; created exclusively, so
                  a second shim for the same directory gives up at once
    status.json   ContainerState, replaced atomically (write temp, rename)
    stop.json     {"grace_seconds": g}, written by the agent before SIGUSR1
    shim.log      the shim's own stderr

Stop: SIGUSR1 (grace from stop.json) or SIGTERM/SIGINT/SIGHUP (the launch's
grace) → SIGTERM to the command's process group, SIGKILL to the group and the
cgroup when the grace runs out. When the command exits, whatever it left in its
group or cgroup is killed (as a container's pid namespace would be), every child
is reaped, the logs are drained, the cgroup removed and then the status written.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from corral.agent.runtime.base import (
    START_ERROR_EXIT_CODE,
    ContainerLaunch,
    ContainerState,
    RunPhase,
)
from corral.agent.runtime.cgroups import ContainerCgroup, Limits, apply_rlimits
from corral.agent.runtime.logs import MAX_LINE, LogWriter, log_path
from corral.agent.runtime.mounts import MountError, private_binds
from corral.agent.runtime.stdio import ContainerStdio

SHIM_MODULE = "corral.agent.runtime.shim"
SHIM_NAME = "corral-shim"  # the process name (comm) ps shows for a forked shim
DRAIN_SECONDS = 2.0  # after the command exits: how long leftovers may hold the pipes
_PR_SET_NAME = 15
_PR_SET_CHILD_SUBREAPER = 36
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_HANDLED_SIGNALS = (signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2, *_STOP_SIGNALS)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def reap_children() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of every child that has ended, without blocking."""
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, wait_status


def process_start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot): with the pid, an
    identity no recycled pid shares. None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def set_process_name(name: str) -> None:
    """What ps and /proc/PID/comm show (a forked process keeps its parent's argv)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


class StateDir:
    """The files of one instance's state directory (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.launch_file = self.path / "launch.json"
        self.cgroup_file = self.path / "cgroup.json"
        self.status_file = self.path / "status.json"
        self.stop_file = self.path / "stop.json"
        self.pid_file = self.path / "shim.pid"
        self.log_file = self.path / "shim.log"

    def read_launch(self) -> ContainerLaunch:
        return ContainerLaunch.from_json(self.launch_file.read_text())

    def read_cgroup(self) -> ContainerCgroup | None:
        data = json.loads(self.cgroup_file.read_text())
        return None if data is None else ContainerCgroup.from_dict(data)

    def read_status(self) -> ContainerState | None:
        try:
            return ContainerState.from_dict(json.loads(self.status_file.read_text()))
        except FileNotFoundError:
            return None

    def write_status(self, state: ContainerState) -> None:
        write_json_atomic(self.status_file, state.to_dict())

    def read_shim_identity(self) -> tuple[int, int | None] | None:
        """(pid, start ticks) of the shim; start is None in an old-style pid file."""
        try:
            data = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if isinstance(data, int):
            return data, None
        return int(data["pid"]), int(data["start"])

    def read_shim_pid(self) -> int | None:
        identity = self.read_shim_identity()
        return identity[0] if identity is not None else None

    def claim(self) -> bool:
        """Record this process as the instance's shim; False if one already is."""
        pid = os.getpid()
        tmp = self.path / f".shim.pid.{pid}.tmp"
        tmp.write_text(json.dumps({"pid": pid, "start": process_start_ticks(pid)}))
        try:
            os.link(tmp, self.pid_file)  # atomic, complete, and fails if present
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()

    def stop_grace(self, default: float) -> float:
        try:
            return float(json.loads(self.stop_file.read_text())["grace_seconds"])
        except (OSError, ValueError, KeyError):
            return default


def start_error_message(exc: BaseException, launch: ContainerLaunch) -> str:
    """A message in the spirit of the container runtimes' (runc's) exec errors."""
    program = launch.command[0] if launch.command else ""
    if isinstance(exc, MountError):
        return f"mount: {exc.strerror}"
    if isinstance(exc, OSError) and exc.filename is None and launch.run_as is not None:
        # Popen reports a failure between fork and exec without a file name:
        # with a user to become, that is setgroups/setgid/setuid.
        return f"setting user {launch.run_as.describe()}: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.filename == launch.working_dir:
        return f"chdir to {launch.working_dir!r}: {exc.strerror}"
    if "/" not in program and (isinstance(exc, FileNotFoundError) or (
            isinstance(exc, PermissionError) and not _on_path(program, launch))):
        # A user other than root meets directories it may not search on the way
        # (EACCES); a program that is nowhere on $PATH is still "not found".
        return f'exec: "{program}": executable file not found in $PATH'
    if isinstance(exc, OSError):
        return f'exec: "{program}": {(exc.strerror or str(exc)).lower()}'
    return f'exec: "{program}": {exc}'


def _on_path(program: str, launch: ContainerLaunch) -> bool:
    path = launch.env.get("PATH") or os.environ.get("PATH", os.defpath)
    return shutil.which(program, path=path) is not None


def terminated_state(base: ContainerState, wait_status: int, oom_kills: int) -> ContainerState:
    """The EXITED state for a reaped command: Kubernetes' exit code and reason."""
    state = ContainerState(**{**base.__dict__, "phase": RunPhase.EXITED})
    state.finished_at = time.time()
    if os.WIFSIGNALED(wait_status):
        state.signal = os.WTERMSIG(wait_status)
        state.exit_code = 128 + state.signal
    else:
        state.exit_code = os.waitstatus_to_exitcode(wait_status)
    state.oom_killed = oom_kills > 0
    if state.oom_killed:
        state.reason = "OOMKilled"
    else:
        state.reason = "Completed" if state.exit_code == 0 else "Error"
    return state


class LinePump:
    """Copies one of the command's pipes to the log, one CRI record per line
    (partial records past MAX_LINE)."""

    def __init__(self, stream: str, writer: LogWriter, eager: bool = False) -> None:
        self.stream = stream
        self.writer = writer
        self.eager = eager  # a terminal's output: a partial line is written at once
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.writer.write_line(self.stream, line)
        while len(self._buffer) >= MAX_LINE or (self.eager and self._buffer):
            self.writer.write_line(self.stream, self._buffer[:MAX_LINE], partial=True)
            self._buffer = self._buffer[MAX_LINE:]

    def finish(self) -> None:
        if self._buffer:
            self.writer.write_line(self.stream, self._buffer)
            self._buffer = b""


class SignalPipe:
    """Signals as bytes on a pipe the selector watches (the handlers do nothing:
    the C-level handler writes the signal number to the wakeup fd)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for sig in _HANDLED_SIGNALS:
            signal.signal(sig, _ignore_signal)

    def received(self) -> list[int]:
        try:
            return list(os.read(self.read_fd, 512))
        except BlockingIOError:
            return []


def _ignore_signal(signum: int, frame: object) -> None:
    pass


class Shim:
    """Supervises one command from start to reaped exit."""

    def __init__(self, state_dir: StateDir, ready_fd: int | None = None) -> None:
        self.dir = state_dir
        self.ready_fd = ready_fd  # told once the first status is on disk (launcher.py)
        self.launch = state_dir.read_launch()
        self.cgroup = state_dir.read_cgroup()
        # Without cgroups the pod's pids limit can only be each container's rlimit.
        pids = self.launch.pids_limit if self.cgroup is not None else (
            self.launch.pids_limit or self.launch.pod_pids_limit)
        self.limits = Limits(self.launch.cpu_request_millis, self.launch.cpu_limit_millis,
                             self.launch.memory_limit_bytes, pids)
        self.pid = 0
        self.wait_status: int | None = None  # the command's, once reaped
        self._started: ContainerState | None = None
        self._kill_at: float | None = None  # monotonic deadline of the SIGKILL
        self._killed = False
        self._selector = selectors.DefaultSelector()
        self._pumps: dict[int, LinePump] = {}
        self.stdio = ContainerStdio(state_dir.path, self.launch.stdin, self.launch.tty)

    def _base_state(self) -> ContainerState:
        launch = self.launch
        return ContainerState(launch.container_id, launch.pod_uid, launch.container_name,
                              launch.attempt, RunPhase.RUNNING, shim_pid=os.getpid())

    def run(self) -> int:
        signals = SignalPipe()  # before the command starts: no SIGCHLD is missed
        self._selector.register(signals.read_fd, selectors.EVENT_READ, signals)
        writer = LogWriter(log_path(self.launch.log_dir, self.launch.attempt),
                           self.launch.log_max_bytes, self.launch.log_max_files)
        try:
            popen = self._start(writer)
            if popen is not None:
                self._supervise(popen, writer)
        finally:
            writer.close()
            self.stdio.close()
            self._remove_cgroup()
        return 0

    def _start(self, writer: LogWriter) -> subprocess.Popen[bytes] | None:
        try:
            if self.cgroup is not None:
                self.cgroup.create(self.limits)
            if not self.launch.command:
                raise ValueError("no command given")
            Path(self.launch.working_dir).mkdir(parents=True, exist_ok=True)
            private_binds(self.launch.binds)  # the shim's own namespace; the child's too
            popen = self._popen()
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            state = self._base_state()
            state.phase, state.finished_at = RunPhase.EXITED, time.time()
            state.exit_code, state.reason = START_ERROR_EXIT_CODE, "StartError"
            state.message = start_error_message(exc, self.launch)
            writer.write_line("stderr", state.message.encode())
            self.dir.write_status(state)
            self._announce()
            return None
        self.pid = popen.pid
        state = self._base_state()
        state.pid, state.pgid, state.started_at = self.pid, self.pid, time.time()
        self._started = state
        self.dir.write_status(state)
        self._announce()
        return popen

    def _announce(self) -> None:
        if self.ready_fd is None:
            return
        try:
            os.write(self.ready_fd, b".")
        except OSError:
            pass  # the launcher is gone: nobody waits
        os.close(self.ready_fd)
        self.ready_fd = None

    def _popen(self) -> subprocess.Popen[bytes]:
        # The command finds its program on its own PATH, else on the agent's.
        env = {"PATH": os.environ.get("PATH", os.defpath), **self.launch.env}

        stdio = self.stdio.popen_kwargs()
        run_as = self.launch.run_as

        def popen(preexec: Callable[[], None] | None, switch: bool) -> subprocess.Popen[bytes]:
            # Popen changes user after its chdir into the working directory and
            # before the preexec_fn (see _isolate_child for the other order).
            ids: dict[str, Any] = {} if run_as is None or not switch else {
                "user": run_as.uid, "group": run_as.gid, "extra_groups": list(run_as.groups)}
            try:
                return subprocess.Popen(
                    self.launch.command, env=env, cwd=self.launch.working_dir, **stdio,
                    preexec_fn=self.stdio.preexec(preexec),  # noqa: PLW1509 - no threads
                    **ids,
                )
            finally:
                self.stdio.spawned()
        # The shim steps into the cgroup while it spawns (the child inherits it),
        # unless a pids limit of 1 (its own or its pod's) leaves no room for the
        # shim beside the child.
        room = min(self.limits.pids_limit or 2, self.launch.pod_pids_limit or 2)
        if self.cgroup is not None and room >= 2:
            try:
                with self.cgroup.hold(os.getpid()):
                    return popen(None, switch=True)
            except LookupError:
                pass
        isolate = self._isolate_child()
        return popen(isolate, switch=isolate is None)

    def _isolate_child(self) -> Callable[[], None] | None:
        """What the child runs before exec; None when there is nothing to do, so
        that Popen can vfork (a preexec_fn costs a full fork, ~3 ms here). Joining
        a cgroup takes root, so a child that joins one changes user itself, after."""
        cgroup, limits, run_as = self.cgroup, self.limits, self.launch.run_as
        if cgroup is None and not (limits.memory_limit_bytes or limits.pids_limit):
            return None

        def isolate() -> None:  # runs in the child between fork and exec
            if cgroup is not None:
                cgroup.join(os.getpid())
            else:
                apply_rlimits(limits)
            if run_as is not None:
                os.setgroups(list(run_as.groups))
                os.setresgid(run_as.gid, run_as.gid, run_as.gid)
                os.setresuid(run_as.uid, run_as.uid, run_as.uid)
        return isolate

    def _supervise(self, popen: subprocess.Popen[bytes], writer: LogWriter) -> None:
        for fd, stream in self.stdio.outputs(popen):
            os.set_blocking(fd, False)
            self._pumps[fd] = LinePump(stream, writer, eager=self.stdio.tty)
            self._selector.register(fd, selectors.EVENT_READ, None)
        if self.stdio.fifo is not None:
            self._selector.register(self.stdio.fifo, selectors.EVENT_READ, self.stdio)
        self._reap()  # the command may have exited before we looked
        while self.wait_status is None:
            self._poll(self._seconds_to_kill())
        popen.returncode = os.waitstatus_to_exitcode(self.wait_status)
        self._kill_leftovers()
        drain_until = time.monotonic() + DRAIN_SECONDS
        while self._pumps and time.monotonic() < drain_until:  # a leftover we could
            self._poll(drain_until - time.monotonic())          # not kill holds a pipe
        for pump in self._pumps.values():
            pump.finish()
        oom = self.cgroup.oom_kills() if self.cgroup is not None else 0
        self._remove_cgroup()  # so that an EXITED status means its resources are free
        assert self._started is not None
        self.dir.write_status(terminated_state(self._started, self.wait_status, oom))

    def _seconds_to_kill(self) -> float | None:
        if self._kill_at is None or self._killed:
            return None
        return max(0.0, self._kill_at - time.monotonic())

    def _poll(self, timeout: float | None) -> None:
        if self.stdio.pending:  # stdin the command has not taken yet: retry soon
            timeout = 0.05 if timeout is None else min(timeout, 0.05)
        for key, _ in self._selector.select(timeout):
            if isinstance(key.data, SignalPipe):
                self._on_signals(key.data.received())
            elif isinstance(key.data, ContainerStdio):
                key.data.from_fifo()
            else:
                self._read_pipe(key.fd)
        self.stdio.flush()
        if self._seconds_to_kill() == 0.0:
            self._killed = True
            self._kill_leftovers()

    def _read_pipe(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as err:  # a pty's master reads EIO once the terminal is gone
            if err.errno != errno.EIO:
                raise
            chunk = b""
        if chunk:
            self._pumps[fd].feed(chunk)
            return
        self._selector.unregister(fd)
        self._pumps.pop(fd).finish()

    def _on_signals(self, signums: list[int]) -> None:
        if signal.SIGCHLD in signums:
            self._reap()
        if signal.SIGUSR2 in signums:
            self.stdio.close_stdin()
        if signal.SIGUSR1 in signums:
            self.request_stop(self.dir.stop_grace(self.launch.stop_grace_seconds))
        if any(sig in signums for sig in _STOP_SIGNALS):
            self.request_stop(self.launch.stop_grace_seconds)

    def _reap(self) -> None:
        for pid, wait_status in reap_children():
            if pid == self.pid and self.wait_status is None:
                self.wait_status = wait_status

    def request_stop(self, grace_seconds: float) -> None:
        """SIGTERM now, SIGKILL after the grace; a later, shorter grace wins."""
        if self.wait_status is not None or self.pid == 0:
            return
        kill_at = time.monotonic() + max(0.0, grace_seconds)
        if self._kill_at is not None and kill_at >= self._kill_at:
            return
        first = self._kill_at is None
        self._kill_at, self._killed = kill_at, False
        if first:
            _killpg(self.pid, signal.SIGTERM)

    def _kill_leftovers(self) -> None:
        _killpg(self.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def _remove_cgroup(self) -> None:
        if self.cgroup is None:
            return
        for _ in range(100):  # killed processes take a moment to leave the group
            if self.cgroup.remove():
                return
            self.cgroup.kill_all()
            time.sleep(0.02)
            self._reap()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def become_shim(state_dir: StateDir) -> bool:
    """In the detached process: take the instance (False if another shim has it)."""
    try:  # children the command orphans are re-parented to us and reaped here
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    set_process_name(SHIM_NAME)
    return state_dir.claim()


def supervise(state_dir: StateDir, ready_fd: int | None = None) -> int:
    """The detached shim's whole life; the caller exits with the result.
    ``ready_fd`` gets a byte once the first status is written (and is closed,
    also when the shim dies early, so its reader always wakes)."""
    if not become_shim(state_dir):
        print(f"another shim supervises {state_dir.path}; exiting", file=sys.stderr)
        return 0
    return Shim(state_dir, ready_fd).run()


def main(argv: list[str]) -> int:
    """The fallback: a fresh interpreter, detached by a double fork so the agent
    reaps the first process at once and the shim lives on in its own session."""
    if len(argv) != 1:
        print(f"usage: python -m {SHIM_MODULE} STATE_DIR", file=sys.stderr)
        return 2
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    return supervise(StateDir(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
