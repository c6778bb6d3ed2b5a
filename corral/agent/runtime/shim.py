"""The per-container supervisor: ``python -m corral.agent.runtime.shim STATE_DIR``.

Like containerd's shim, one runs per container instance and outlives the agent,
so an agent restart (or crash) never touches running containers:

    agent ──spawn──▶ shim ──fork, parent exits──▶ shim (setsid, own session,
                                                   child subreaper)
                                                     │ Popen, own process group,
                                                     │ joins the cgroup before exec
                                                     ▼
                                                  command ──stdout/stderr pipes──▶ LogWriter

The state directory is the only channel between agent and shim:

    launch.json   ContainerLaunch (written by the agent)
    cgroup.json   the instance's ContainerCgroup, or null for rlimits
    shim.pid      the detached shim's pid
    status.json   ContainerState, replaced atomically (write temp, rename)
    stop.json     {"grace_seconds": g}, written by the agent before SIGUSR1
    shim.log      the shim's own stderr

Stop: SIGUSR1 (grace from stop.json) or SIGTERM/SIGINT (the launch's grace)
→ SIGTERM to the command's process group, SIGKILL to the group and the cgroup
when the grace runs out. When the command exits, whatever it left in its group
or cgroup is killed (as a container's pid namespace would be), every child is
reaped, the logs are drained, the cgroup removed and then the status written.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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

SHIM_MODULE = "corral.agent.runtime.shim"
_PR_SET_CHILD_SUBREAPER = 36


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


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

    def read_shim_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def stop_grace(self, default: float) -> float:
        try:
            return float(json.loads(self.stop_file.read_text())["grace_seconds"])
        except (OSError, ValueError, KeyError):
            return default


def start_error_message(exc: BaseException, launch: ContainerLaunch) -> str:
    """A message in the spirit of the container runtimes' (runc's) exec errors."""
    program = launch.command[0] if launch.command else ""
    if isinstance(exc, OSError) and exc.filename == launch.working_dir:
        return f"chdir to {launch.working_dir!r}: {exc.strerror}"
    if isinstance(exc, FileNotFoundError) and "/" not in program:
        return f'exec: "{program}": executable file not found in $PATH'
    if isinstance(exc, OSError):
        return f'exec: "{program}": {(exc.strerror or str(exc)).lower()}'
    return f'exec: "{program}": {exc}'


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


class Shim:
    """Supervises one command from start to reaped exit."""

    def __init__(self, state_dir: StateDir) -> None:
        self.dir = state_dir
        self.launch = state_dir.read_launch()
        self.cgroup = state_dir.read_cgroup()
        self.limits = Limits(self.launch.cpu_request_millis, self.launch.cpu_limit_millis,
                             self.launch.memory_limit_bytes, self.launch.pids_limit)
        self.pid = 0
        self._started: ContainerState | None = None
        self.popen: subprocess.Popen[bytes] | None = None
        self._kill_at: float | None = None
        self._kill_timer: asyncio.TimerHandle | None = None

    def _base_state(self) -> ContainerState:
        launch = self.launch
        return ContainerState(launch.container_id, launch.pod_uid, launch.container_name,
                              launch.attempt, RunPhase.RUNNING, shim_pid=os.getpid())

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        writer = LogWriter(log_path(self.launch.log_dir, self.launch.attempt),
                           self.launch.log_max_bytes, self.launch.log_max_files)
        try:
            if not self._start(writer):
                return 0
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.add_signal_handler(sig, self.request_stop, self.launch.stop_grace_seconds)
            loop.add_signal_handler(signal.SIGUSR1, self._stop_from_file)
            await self._supervise(writer)
        finally:
            writer.close()
            self._remove_cgroup()
        return 0

    def _start(self, writer: LogWriter) -> bool:
        try:
            if self.cgroup is not None:
                self.cgroup.create(self.limits)
            if not self.launch.command:
                raise ValueError("no command given")
            Path(self.launch.working_dir).mkdir(parents=True, exist_ok=True)
            self.popen = self._popen()
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            state = self._base_state()
            state.phase, state.finished_at = RunPhase.EXITED, time.time()
            state.exit_code, state.reason = START_ERROR_EXIT_CODE, "StartError"
            state.message = start_error_message(exc, self.launch)
            writer.write_line("stderr", state.message.encode())
            self.dir.write_status(state)
            return False
        self.pid = self.popen.pid
        state = self._base_state()
        state.pid, state.pgid, state.started_at = self.pid, self.pid, time.time()
        self._started = state
        self.dir.write_status(state)
        return True

    def _popen(self) -> subprocess.Popen[bytes]:
        # The command finds its program on its own PATH, else on the agent's.
        env = {"PATH": os.environ.get("PATH", os.defpath), **self.launch.env}
        return subprocess.Popen(
            self.launch.command, env=env, cwd=self.launch.working_dir,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            process_group=0,
            preexec_fn=self._isolate_child(),  # noqa: PLW1509 - the shim has no threads
        )

    def _isolate_child(self) -> Callable[[], None]:
        cgroup, limits = self.cgroup, self.limits

        def isolate() -> None:  # runs in the child between fork and exec
            if cgroup is not None:
                cgroup.join(os.getpid())
            else:
                apply_rlimits(limits)
        return isolate

    async def _supervise(self, writer: LogWriter) -> None:
        assert self.popen is not None and self.popen.stdout and self.popen.stderr
        pumps = [asyncio.create_task(_pump(self.popen.stdout, "stdout", writer)),
                 asyncio.create_task(_pump(self.popen.stderr, "stderr", writer))]
        self._reap()  # the command may have exited before the handler was set
        wait_status = await self.exited
        self._kill_leftovers()
        _, pending = await asyncio.wait(pumps, timeout=2.0)
        for task in pending:  # a leftover we could not kill still holds a pipe
            task.cancel()
        oom = self.cgroup.oom_kills() if self.cgroup is not None else 0
        self._remove_cgroup()  # so that an EXITED status means its resources are free
        assert self._started is not None
        self.dir.write_status(terminated_state(self._started, wait_status, oom))

    def _reap(self) -> None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid and not self.exited.done():
                if self.popen is not None:
                    self.popen.returncode = os.waitstatus_to_exitcode(wait_status)
                self.exited.set_result(wait_status)

    def request_stop(self, grace_seconds: float) -> None:
        """SIGTERM now, SIGKILL after the grace; a later, shorter grace wins."""
        if self.exited.done():
            return
        loop = asyncio.get_running_loop()
        kill_at = loop.time() + max(0.0, grace_seconds)
        if self._kill_at is not None and kill_at >= self._kill_at:
            return
        first = self._kill_at is None
        self._kill_at = kill_at
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._kill_timer = loop.call_at(kill_at, self._kill_leftovers)
        if first:
            _killpg(self.pid, signal.SIGTERM)

    def _stop_from_file(self) -> None:
        self.request_stop(self.dir.stop_grace(self.launch.stop_grace_seconds))

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


async def _pump(pipe: Any, stream: str, writer: LogWriter) -> None:
    """Copy a pipe to the log, one CRI record per line (partial past MAX_LINE)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=4 * MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    buffer = b""
    while chunk := await reader.read(65536):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            writer.write_line(stream, line)
        while len(buffer) >= MAX_LINE:
            writer.write_line(stream, buffer[:MAX_LINE], partial=True)
            buffer = buffer[MAX_LINE:]
    if buffer:
        writer.write_line(stream, buffer)


def _detach(state_dir: StateDir) -> None:
    """Double fork: the agent reaps the first process at once, and the shim lives
    on in its own session, re-parented to init when the agent goes."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    try:  # children the command orphans are re-parented to us and reaped here
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    write_json_atomic(state_dir.pid_file, os.getpid())


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: python -m {SHIM_MODULE} STATE_DIR", file=sys.stderr)
        return 2
    state_dir = StateDir(argv[0])
    _detach(state_dir)
    return asyncio.run(Shim(state_dir).run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
