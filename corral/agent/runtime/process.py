"""ProcessRuntime: container instances as OS processes, each under its own shim.

All state is on disk, one directory per instance under ``state_root`` (format in
shim.py), so a new ProcessRuntime over the same ``state_root`` — an agent after
a restart or a crash — sees exactly what runs, and ``start`` of an id that has a
directory returns that instance instead of starting a second copy.

    start  mkdir state dir (exclusive) → write launch.json, cgroup.json
           → ask the node's launcher to fork a shim (launcher.py; the launcher
             is started if none runs; `python -m ...shim` if it cannot help)
           → wait for status.json (running, or StartError)
    stop   write stop.json, SIGUSR1 the shim → it SIGTERMs the group, SIGKILLs
           after the grace → wait for the EXITED status; if the shim is gone,
           do the same here and record the state ourselves
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import psutil  # type: ignore[import-untyped]

import corral
from corral.agent.metrics import runtime_operation
from corral.agent.runtime.base import (
    AttachTarget,
    ContainerLaunch,
    ContainerState,
    ExecEnvironment,
    Isolation,
    ResourceUsage,
    RunPhase,
)
from corral.agent.runtime.cgroups import (
    POD_PREFIX,
    CgroupSystem,
    ContainerCgroup,
    detect_isolation,
)
from corral.agent.runtime.launcher import LAUNCHER_MODULE, LOG_NAME, MAX_SOCKET_PATH, socket_path
from corral.agent.runtime.logs import LogFiles
from corral.agent.runtime.shim import (
    SHIM_MODULE,
    StateDir,
    process_start_ticks,
    write_json_atomic,
)
from corral.agent.runtime.stdio import STDIN_FIFO, TTY_FILE
from corral.private_files import private_dir

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02
# A forked shim answers in a few ms: waits poll from this, doubling up to POLL_SECONDS.
FIRST_POLL_SECONDS = 0.002
# The poll cap while a pidfd wakes us when the shim exits (it writes its last
# status just before): the polls are then only for statuses written mid-life.
WATCHED_POLL_SECONDS = 0.2
LAUNCH_REPLY_SECONDS = 10.0
# Beyond the grace: time for the shim to notice SIGKILL'd children and write status.
STOP_SLACK_SECONDS = 5.0


class ShimLost(Exception):
    """Raised inside this module when an instance's shim is gone before it
    recorded what was awaited; callers then settle the instance themselves."""


def _mount_namespace(state_dir: StateDir) -> str:
    state = state_dir.read_status()
    path = f"/proc/{state.pid}/ns/mnt" if state is not None and state.pid else ""
    return path if path and os.path.exists(path) else ""


class ProcessRuntime:
    """The Runtime (base.py) of the node agent. ``isolation`` is detected once."""

    def __init__(
        self, state_root: str | Path, cgroup_parent: str = "corral",
        allow_cgroups: bool = True, start_timeout: float = 30.0,
    ) -> None:
        # The shim runs in /. Instances' launch.json carry their env (secrets too).
        self.state_root = private_dir(Path(state_root).resolve())
        self.start_timeout = start_timeout
        self._cgroups, self._isolation = detect_isolation(cgroup_parent,
                                                          allow_cgroups=allow_cgroups)
        # This runtime's pods whose group is elsewhere: put straight in the
        # host-wide parent (corral/pod-<uid>) by an agent from before each node
        # had its own. A cgroup cannot move to another parent, so each keeps its
        # group (and its new instances go there) until the pod goes.
        self._pods_elsewhere = self._find_pods_elsewhere()
        self._locks: dict[str, asyncio.Lock] = {}
        self.launcher = LauncherClient(self.state_root)

    @property
    def cgroups(self) -> CgroupSystem | None:
        return self._cgroups

    def isolation(self) -> Isolation:
        return self._isolation

    def _find_pods_elsewhere(self) -> dict[str, ContainerCgroup]:
        found: dict[str, ContainerCgroup] = {}
        if self._cgroups is None:
            return found
        for path in self.state_root.iterdir():
            state_dir = StateDir(path)
            try:
                group = state_dir.read_cgroup() if state_dir.cgroup_file.exists() else None
            except (OSError, ValueError, KeyError):
                continue
            pod = group.pod_group() if group is not None else None
            if pod is not None and not self._cgroups.owns(pod):
                found[Path(next(iter(pod.dirs.values()))).name[len(POD_PREFIX):]] = pod
        return found

    def _pod_group(self, pod_uid: str) -> ContainerCgroup:
        assert self._cgroups is not None
        return self._pods_elsewhere.get(pod_uid) or self._cgroups.for_pod(pod_uid)

    def _dir(self, container_id: str) -> StateDir:
        return StateDir(self.state_root / container_id)

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    @runtime_operation("start_container")
    async def start(self, launch: ContainerLaunch) -> ContainerState:
        cid = launch.container_id
        async with self._lock(cid):
            state_dir = self._dir(cid)
            if state_dir.launch_file.exists():
                # Started before (maybe by the agent before a restart): that one.
                return await self._first_status(state_dir)
            # A directory without launch.json is a start that died half-way.
            shutil.rmtree(state_dir.path, ignore_errors=True)
            state_dir.path.mkdir(mode=0o700, parents=True)
            self._prepare(state_dir, launch)
            await self._spawn_shim(state_dir)
            state = await self._first_status(state_dir)
            log.info("container started id=%s pid=%s reason=%s", cid, state.pid, state.reason)
            return state

    async def _first_status(self, state_dir: StateDir) -> ContainerState:
        try:
            return await self._await_status(state_dir, lambda s: True, self.start_timeout)
        except ShimLost:
            return self._record_lost(state_dir, "supervisor (shim) exited without recording "
                                     "a status; see shim.log in the state directory")
        except TimeoutError:  # an overloaded node: report "Starting", never raise
            return self._read(state_dir)

    def _prepare(self, state_dir: StateDir, launch: ContainerLaunch) -> None:
        launch = dataclasses.replace(  # the shim runs in /, so no relative paths
            launch, log_dir=os.path.abspath(launch.log_dir),
            working_dir=os.path.abspath(launch.working_dir))
        LogFiles(launch.log_dir).prune(keep_from_attempt=launch.attempt - 1)
        cgroup = self._pod_cgroup(launch)
        write_json_atomic(state_dir.cgroup_file, cgroup.to_dict() if cgroup else None)
        # Written last and atomically: launch.json present means the dir is complete.
        tmp = state_dir.path / ".launch.json.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(launch.to_json())
        os.replace(tmp, state_dir.launch_file)

    def _pod_cgroup(self, launch: ContainerLaunch) -> ContainerCgroup | None:
        """The instance's group, inside its pod's group (made here, or adopted
        from before an agent restart, with the pod's pids limit)."""
        if self._cgroups is None:
            return None
        pod = self._pod_group(launch.pod_uid)
        try:
            pod.create_pod_group(launch.pod_pids_limit)
        except OSError as err:  # the instance's own group is still made by its shim
            log.warning("pod cgroup not made pod=%s error=%s", launch.pod_uid, err)
        return pod.child(launch.container_id)

    async def _spawn_shim(self, state_dir: StateDir) -> None:
        if not await self.launcher.launch(state_dir.path):
            await self._spawn_fresh_shim(state_dir)

    async def _spawn_fresh_shim(self, state_dir: StateDir) -> None:
        """The fallback: a fresh interpreter runs the shim (~0.1 s of CPU)."""
        with open(state_dir.log_file, "ab") as shim_log:  # noqa: ASYNC230 - local, tiny
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", SHIM_MODULE, str(state_dir.path),
                stdin=asyncio.subprocess.DEVNULL, stdout=shim_log, stderr=shim_log,
                start_new_session=True, cwd="/", env=shim_env(),
            )
        await proc.wait()  # the first fork exits at once; the shim lives on detached

    async def _await_status(
        self, state_dir: StateDir, done: Callable[[ContainerState], bool], timeout: float,
    ) -> ContainerState:
        deadline = time.monotonic() + timeout
        poll = FIRST_POLL_SECONDS
        with _ShimWatch(state_dir) as shim:
            while True:
                state = state_dir.read_status()
                if state is not None and done(state):
                    return state
                if shim.lost():
                    state = state_dir.read_status()  # it may have written just before exiting
                    if state is not None and done(state):
                        return state
                    raise ShimLost(state_dir.path.name)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"shim of {state_dir.path.name} did not answer in time")
                await shim.exit_or_sleep(poll)
                poll = min(poll * 2, WATCHED_POLL_SECONDS if shim.watched else POLL_SECONDS)

    def _shim_alive(self, state_dir: StateDir) -> bool:
        pid = state_dir.read_shim_pid()
        return pid is not None and is_shim_process(pid, state_dir.path)

    @runtime_operation("stop_container")
    async def stop(self, container_id: str, grace_seconds: float) -> ContainerState:
        state_dir = self._dir(container_id)
        state = self._read(state_dir)
        if state_dir.read_status() is None:  # stopped while still starting
            state = await self._first_status(state_dir)
        if not state.running:
            return state
        if self._shim_alive(state_dir):
            write_json_atomic(state_dir.stop_file, {"grace_seconds": grace_seconds})
            shim_pid = state_dir.read_shim_pid()
            assert shim_pid is not None
            os.kill(shim_pid, signal.SIGUSR1)
            try:
                return await self._await_status(state_dir, lambda s: not s.running,
                                                grace_seconds + STOP_SLACK_SECONDS)
            except (ShimLost, TimeoutError):
                log.warning("shim did not stop id=%s; stopping it here", container_id)
        return await self._stop_without_shim(state_dir, state, grace_seconds)

    async def _stop_without_shim(
        self, state_dir: StateDir, state: ContainerState, grace_seconds: float,
    ) -> ContainerState:
        if state.pgid is not None:
            _killpg(state.pgid, signal.SIGTERM)
            deadline = time.monotonic() + grace_seconds
            while time.monotonic() < deadline and _group_alive(state.pgid):
                await asyncio.sleep(POLL_SECONDS)
        return self._record_lost(state_dir, "supervisor (shim) lost; container stopped "
                                 "by the agent")

    def _record_lost(self, state_dir: StateDir, message: str) -> ContainerState:
        """Kill what is left of an instance whose shim died and record it as Error."""
        state = state_dir.read_status()
        if state is None:
            launch = state_dir.read_launch()
            state = ContainerState(launch.container_id, launch.pod_uid,
                                   launch.container_name, launch.attempt, RunPhase.RUNNING)
        if state.pgid is not None:
            _killpg(state.pgid, signal.SIGKILL)
        cgroup = state_dir.read_cgroup()
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
        state.phase, state.finished_at = RunPhase.EXITED, time.time()
        state.exit_code, state.signal = 128 + signal.SIGKILL, signal.SIGKILL
        state.reason, state.message = "Error", message
        state_dir.write_status(state)
        log.warning("container lost its shim id=%s", state.container_id)
        return state

    def _read(self, state_dir: StateDir) -> ContainerState:
        if not state_dir.launch_file.exists():
            raise KeyError(state_dir.path.name)
        state = state_dir.read_status()
        if state is None:
            launch = state_dir.read_launch()
            state = ContainerState(launch.container_id, launch.pod_uid,
                                   launch.container_name, launch.attempt, RunPhase.RUNNING,
                                   reason="Starting")
        return state

    @runtime_operation("container_status")
    async def status(self, container_id: str) -> ContainerState:
        return self._read(self._dir(container_id))

    def exited(self, container_id: str) -> bool:
        """Synchronous check, e.g. for LogFiles.follow(finished=...); an instance
        already removed has exited too."""
        state_dir = self._dir(container_id)
        if not state_dir.path.exists():
            return True
        state = state_dir.read_status()
        return state is not None and not state.running

    @runtime_operation("list_containers")
    async def list(self) -> builtins.list[ContainerState]:
        states = []
        for path in sorted(self.state_root.iterdir()):
            if (path / "launch.json").exists():
                states.append(self._read(StateDir(path)))
        return states

    @runtime_operation("adopt_containers")
    async def adopt(self) -> builtins.list[ContainerState]:
        adopted = []
        for state in await self.list():
            state_dir = self._dir(state.container_id)
            if state.running and not self._shim_alive(state_dir):
                state = self._record_lost(state_dir, "supervisor (shim) died while the "
                                          "agent was away; container killed")
            adopted.append(state)
        log.info("adopted containers count=%d running=%d", len(adopted),
                 sum(s.running for s in adopted))
        return adopted

    @runtime_operation("container_stats")
    async def usage(self, container_id: str) -> ResourceUsage | None:
        state_dir = self._dir(container_id)
        state = self._read(state_dir)
        if not state.running:
            return None
        cgroup = state_dir.read_cgroup()
        if cgroup is not None:
            return cgroup.usage()
        return _process_tree_usage(state.pid)

    def exec_environment(self, container_id: str) -> ExecEnvironment:
        state_dir = self._dir(container_id)
        if not state_dir.launch_file.exists():
            raise KeyError(container_id)
        launch, cgroup = state_dir.read_launch(), state_dir.read_cgroup()
        # The command finds its program on its own PATH, else on the agent's (as the shim).
        env = {"PATH": os.environ.get("PATH", os.defpath), **launch.env}
        procs = cgroup.procs_files() if cgroup is not None else ()
        return ExecEnvironment(env, launch.working_dir, procs, launch.run_as,
                               _mount_namespace(state_dir) if launch.binds else "")

    def attach_target(self, container_id: str) -> AttachTarget:
        state_dir = self._dir(container_id)
        launch = state_dir.read_launch()
        fifo, tty_file = state_dir.path / STDIN_FIFO, state_dir.path / TTY_FILE
        tty = json.loads(tty_file.read_text())["path"] if tty_file.exists() else None
        return AttachTarget(str(fifo) if fifo.exists() else None, tty, launch.stdin_once)

    def close_stdin(self, container_id: str) -> None:
        state_dir = self._dir(container_id)
        pid = state_dir.read_shim_pid()
        if pid is not None and is_shim_process(pid, state_dir.path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR2)

    @runtime_operation("remove_container")
    async def remove(self, container_id: str) -> None:
        state_dir = self._dir(container_id)
        state = self._read(state_dir)
        if state.running:
            raise RuntimeError(f"container {container_id} is running; stop it first")
        cgroup = state_dir.read_cgroup()
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.remove()
        shutil.rmtree(state_dir.path, ignore_errors=True)
        self._locks.pop(container_id, None)


    async def remove_pod(self, pod_uid: str) -> bool:
        if self._cgroups is None:
            return True
        removed = self._pod_group(pod_uid).kill_and_remove()
        if removed:
            self._pods_elsewhere.pop(pod_uid, None)
        else:
            log.info("pod cgroup still busy; the sweep comes back to it pod=%s", pod_uid)
        return removed

    def pod_uids(self) -> builtins.list[str]:
        """The pods with a group of this runtime's: in its parent, or elsewhere
        but known from its own instances; never another node's."""
        if self._cgroups is None:
            return []
        return sorted({*self._cgroups.pod_uids(), *self._pods_elsewhere})

    def remove_parent(self) -> None:
        """After every instance was stopped (an agent ending with its pods): the
        pods' empty groups, then the parent, so no group is left behind; what is
        still busy stays."""
        if self._cgroups is None:
            return
        for uid in self.pod_uids():
            self._pod_group(uid).remove()
        if not self._cgroups.remove_parent():
            log.info("cgroup parent kept: groups remain in it parent=%s",
                     self._cgroups.parent)


def shim_env() -> dict[str, str]:
    # The shim imports corral from wherever this agent did, installed or not.
    source_root = str(Path(corral.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{source_root}:{path}" if path else source_root}


class _ShimWatch:
    """Whether an instance's shim has gone, for status waits: identified once
    (is_shim_process reads four files), then watched through a pidfd, which the
    event loop wakes on when the shim exits. Without pidfds: checked per poll."""

    def __init__(self, state_dir: StateDir) -> None:
        self.state_dir = state_dir
        self.watched = False
        self._pidfd: int | None = None
        self._exited: asyncio.Event = asyncio.Event()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def lost(self) -> bool:
        if self.watched:
            return self._exited.is_set()
        pid = self.state_dir.read_shim_pid()
        if pid is None:
            return False  # not started yet: the caller's deadline covers it
        if not is_shim_process(pid, self.state_dir.path):
            return True
        with contextlib.suppress(OSError, AttributeError):
            self._pidfd = os.pidfd_open(pid)
            asyncio.get_running_loop().add_reader(self._pidfd, self._exited.set)
            self.watched = True
        return False

    async def exit_or_sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._exited.wait(), seconds)


def is_shim_process(pid: int, state_path: Path) -> bool:
    """True if pid is the shim of that state dir (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped
        return False
    identity = StateDir(state_path).read_shim_identity()
    if identity is not None and identity[1] is not None:  # forked: argv is the launcher's
        return identity[0] == pid and process_start_ticks(pid) == identity[1]
    return SHIM_MODULE.encode() in cmdline and str(state_path).encode() in cmdline


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class LauncherClient:
    """The runtime's side of the node's shim launcher (launcher.py).

    One connection, held for the runtime's life (it keeps the launcher from
    lingering out), carries every request; a reply comes once that shim has
    written its first status, so starts need no polling. Replies may come out of
    order: whichever waiter holds the read lock reads and hands them out by id.
    A request whose connection fails is retried once with a fresh (maybe newly
    started) launcher: a shim claims its state dir exclusively, so a retry never
    starts a second one."""

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self.socket_path = socket_path(state_root)
        self.usable = len(str(self.socket_path)) <= MAX_SOCKET_PATH
        self._conn: _Connection | None = None
        self._connect_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._next_id = 0

    async def launch(self, state_dir: Path) -> bool:
        """Have the launcher start state_dir's shim; False if it could not. True
        also when the reply is late: the caller then waits for the status file."""
        return await self._launch("start", state_dir)

    async def launch_executor(self, state_dir: Path) -> bool:
        """Have the launcher fork the executor of an Alloc's state dir (under
        launcher.EXECUTORS_DIR); False if it could not. True also when the reply
        is late: the caller then waits for the executor's socket."""
        return await self._launch("executor", state_dir)

    async def warm(self) -> None:
        """Start the launcher now, not at the first pod's or Alloc's need (then
        that one waits for an interpreter and its imports)."""
        if self.usable:
            try:
                await self._connection()
            except OSError as err:
                log.warning("shim launcher failed error=%r", err)

    async def _launch(self, what: str, state_dir: Path) -> bool:
        if not self.usable:
            return False
        for _ in range(2):
            conn = None
            try:
                conn = await self._connection()
                return await self._ask(conn, what, state_dir)
            except TimeoutError:
                log.warning("shim launcher slow to answer dir=%s", state_dir.name)
                return True
            except (OSError, ValueError) as err:
                log.warning("shim launcher failed error=%r", err)
                self._forget(conn)
        return False

    async def _ask(self, conn: _Connection, what: str, state_dir: Path) -> bool:
        reader, writer = conn
        self._next_id += 1
        request_id = self._next_id
        reply: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = reply
        try:
            writer.write(json.dumps({"id": request_id, what: str(state_dir)}).encode()
                         + b"\n")
            await writer.drain()
            async with asyncio.timeout(LAUNCH_REPLY_SECONDS):
                while not reply.done():
                    async with self._read_lock:
                        if not reply.done():
                            self._hand_out(await reader.readline())
            return reply.result()
        finally:
            self._waiting.pop(request_id, None)

    def _hand_out(self, line: bytes) -> None:
        if not line:
            raise ConnectionResetError("shim launcher closed the connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            log.warning("shim launcher refused error=%s", reply.get("error"))
        waiter = self._waiting.get(reply.get("id"))
        if waiter is not None and not waiter.done():
            waiter.set_result(bool(reply.get("ok")))

    async def _connection(self) -> _Connection:
        async with self._connect_lock:
            if self._conn is None:
                try:
                    self._conn = await asyncio.open_unix_connection(str(self.socket_path))
                except (FileNotFoundError, ConnectionRefusedError):
                    await self._start_launcher()
                    self._conn = await asyncio.open_unix_connection(str(self.socket_path))
            return self._conn

    async def _start_launcher(self) -> None:
        """Returns once a launcher listens (ours, or a live one found meanwhile)."""
        log_path = self.state_root / LOG_NAME
        with open(log_path, "ab") as launcher_log:  # noqa: ASYNC230 - local, tiny
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", LAUNCHER_MODULE, str(self.state_root),
                stdin=asyncio.subprocess.DEVNULL, stdout=launcher_log, stderr=launcher_log,
                start_new_session=True, cwd="/", env=shim_env(),
            )
        await proc.wait()  # the first fork exits once the socket listens
        log.info("shim launcher started root=%s", self.state_root)

    def _forget(self, conn: _Connection | None) -> None:
        """Close a failed connection (not a newer one another waiter made)."""
        if conn is not None:
            conn[1].close()
            if self._conn is conn:
                self._conn = None

    def close(self) -> None:
        """Drop the connection (the launcher exits after its linger); waiters on
        it read the end of the stream and retry."""
        self._forget(self._conn)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _process_tree_usage(pid: int | None) -> ResourceUsage | None:
    """Usage without cgroups: the command and its descendants, via psutil."""
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        cpu = memory = 0.0
        for proc in procs:
            with proc.oneshot():
                times = proc.cpu_times()
                cpu += times.user + times.system
                memory += proc.memory_info().rss
    except psutil.Error:
        return None
    return ResourceUsage(int(cpu * 1e9), int(memory), time.time())
