"""The agent's side of the executors (executor.py): start or adopt one per Alloc,
and talk to it over its socket.

    ExecutorRuntime.ensure(config)  alive already (an agent restart)? adopt it;
                                    else write alloc.json and start it detached:
                                    forked by the node's launcher (launcher.py;
                                    ~4 ms of CPU), or a fresh interpreter if it cannot
                                    (~90 ms of CPU: its start and imports)
    ExecutorRuntime.connect(uid)    → ExecutorConnection: hello, then exit events
    conn.launch / kill / ack / stop   JSON lines, written without waiting

State lives in ``<runtime>/allocs/<alloc uid>/`` so that a new agent finds what
the old one started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from corral.agent.runtime.base import RunAs
from corral.agent.runtime.cgroups import CgroupSystem, ContainerCgroup
from corral.agent.runtime.executor import EXECUTOR_MODULE, ExecutorConfig, ExecutorDir
from corral.agent.runtime.launcher import EXECUTORS_DIR
from corral.agent.runtime.process import LauncherClient, shim_env
from corral.private_files import SEARCH_ONLY, private_dir

log = logging.getLogger(__name__)

START_SECONDS = 30.0
POLL_SECONDS = 0.02
# A forked executor listens ~10-30 ms after its start: polled first every ms,
# doubling, so that the first launches do not wait most of a poll for nothing.
FIRST_POLL_SECONDS = 0.001
RETIRED_LOGS = 64  # logs of removed Allocs kept per node (each bounded by its own cap)


@dataclass(frozen=True)
class TaskExit:
    """One task's end as the executor reported it."""

    seq: int
    id: str
    code: int
    signal: int | None
    reason: str
    message: str = ""


def launch_message(task_id: str, command: list[str], env: dict[str, str], cwd: str = "/",
                   user: RunAs | None = None, *, notify: bool = False) -> dict[str, Any]:
    """One task for the executor to start (``notify``: it says "started")."""
    msg: dict[str, Any] = {"id": task_id, "command": command, "env": env, "cwd": cwd}
    if user is not None:
        msg["user"] = user.to_dict()
    if notify:
        msg["notify"] = True
    return msg


Events = list["TaskExit | TaskStarted"]
EventSink = Callable[[Events], None]


class ExecutorConnection(asyncio.Protocol):
    """One connection to a running executor: its hello, then its events (exits
    and starts) as they are read. ``listen`` hands each read's events to a
    callback at once (the Alloc worker's: it folds them there, with no task to
    wake per read); otherwise ``exits`` returns what came since it was last
    asked. An empty list of events means the connection is gone."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._hello: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending: Events = []
        self._arrived: asyncio.Event = asyncio.Event()  # events, or the end
        self._sink: EventSink | None = None
        self._writable: asyncio.Event = asyncio.Event()
        self._writable.set()
        self.ended = asyncio.Event()  # the connection is gone (the executor, or closed)
        self.pid = 0
        self.running: list[str] = []  # task ids running when we connected
        self.queued: list[str] = []
        self.exited: list[str] = []  # exits not yet acknowledged, sent after the hello

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if b"\n" not in data:
            self._buffer += data
            return
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        if not self._hello.done():
            self._hello.set_result(lines.pop(0))
        events = [_event(orjson.loads(line)) for line in lines if line.strip()]
        if events:
            self._deliver(events)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._hello.done():
            self._hello.set_exception(ExecutorGone("the executor closed the connection"))
        self.ended.set()
        self._writable.set()
        self._deliver([])

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- reading ------------------------------------------------------------------------

    async def hello(self) -> None:
        hello = json.loads(await self._hello)
        self.pid = int(hello["pid"])
        self.running = [str(i) for i in hello.get("running") or ()]
        self.queued = [str(i) for i in hello.get("queued") or ()]
        self.exited = [str(i) for i in hello.get("exited") or ()]

    def listen(self, sink: EventSink) -> None:
        """Hand every read's events to ``sink`` from now on (what came before
        first, and [] if the connection is gone already)."""
        self._sink = sink
        pending, self._pending = self._pending, []
        if pending:
            sink(pending)
        if self.ended.is_set():
            sink([])

    async def exits(self) -> Events:
        """The next exits and starts (at least one; all that arrived since). An
        empty list means the connection is gone (the executor exited, or was killed)."""
        while not self._pending and not self.ended.is_set():
            self._arrived.clear()
            await self._arrived.wait()
        pending, self._pending = self._pending, []
        return pending

    def _deliver(self, events: Events) -> None:
        if self._sink is not None:
            self._sink(events)
        else:
            self._pending += events
            self._arrived.set()

    # -- writing ------------------------------------------------------------------------

    def launch(self, task_id: str, command: list[str], env: dict[str, str],
               cwd: str = "/", user: RunAs | None = None) -> None:
        self._send({"op": "launch", **launch_message(task_id, command, env, cwd, user)})

    def launch_many(self, tasks: list[dict[str, Any]]) -> None:
        """Several launches (``launch_message`` each) in one message."""
        if tasks:
            self._send({"op": "launch", "tasks": tasks})

    def resize(self, slots: int, cpu_millis: int | None, memory_bytes: int | None) -> None:
        """The Alloc grew or shrank: its slots and its cgroup's limits."""
        self._send({"op": "resize", "slots": slots, "cpu_request_millis": cpu_millis,
                    "cpu_limit_millis": cpu_millis, "memory_limit_bytes": memory_bytes})

    def kill(self, task_id: str, sig: int = signal.SIGTERM) -> None:
        self._send({"op": "kill", "id": task_id, "signal": int(sig)})

    def ack(self, seq: int) -> None:
        self._send({"op": "ack", "seq": seq})

    def stop(self, grace: float) -> None:
        self._send({"op": "stop", "grace": grace})

    def _send(self, msg: dict[str, Any]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(orjson.dumps(msg) + b"\n")

    async def drain(self) -> None:
        """Until what was written has gone to the executor (or the connection has)."""
        await self._writable.wait()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True)
class TaskStarted:
    """A task's process was started (not buffered: a new connection's hello lists
    what runs)."""

    id: str


def _event(event: dict[str, Any]) -> TaskExit | TaskStarted:
    if event.get("event") == "started":
        return TaskStarted(str(event["id"]))
    return TaskExit(int(event["seq"]), str(event["id"]), int(event["code"]),
                    event.get("signal"), str(event.get("reason") or ""),
                    str(event.get("message") or ""))


class ExecutorRuntime:
    """Executors on this node, one per Alloc uid."""

    def __init__(self, runtime_dir: Path, cgroups: CgroupSystem | None,
                 sandboxes: Path | None = None, launcher: LauncherClient | None = None
                 ) -> None:
        self.root = runtime_dir.resolve() / EXECUTORS_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self.cgroups = cgroups
        # The node's launcher (the ProcessRuntime's, over the same runtime dir).
        self.launcher = launcher
        # Framework tasks' sandboxes: outside the private runtime dir, under
        # search-only parents, so a task's user reaches its own by $MESOS_SANDBOX.
        self.sandboxes = (sandboxes or runtime_dir / "sandboxes").resolve()

    def sandbox_dir(self, alloc_uid: str) -> Path:
        """Where the Alloc's tasks get their sandboxes (made, search-only)."""
        private_dir(self.sandboxes, SEARCH_ONLY)
        return private_dir(self.sandboxes / alloc_uid, SEARCH_ONLY)

    def dir(self, alloc_uid: str) -> ExecutorDir:
        return ExecutorDir(self.root / alloc_uid)

    def known(self) -> list[str]:
        """Alloc uids with a state directory (running or not)."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    async def ensure(self, config: ExecutorConfig) -> bool:
        """Start the Alloc's executor unless it runs; True if it was adopted."""
        state = self.dir(config.alloc_uid)
        if state.alive_pid() is not None:
            return True
        if state.stopped_file.exists():
            raise ExecutorGone(f"the executor of {config.alloc_uid} has stopped")
        shutil.rmtree(state.path, ignore_errors=True)  # a start that died half-way
        state.path.mkdir(parents=True)
        if self.cgroups is not None:
            config.cgroup = self.cgroups.for_container(f"alloc-{config.alloc_uid}").to_dict()
        (state.path / ".alloc.json.tmp").write_text(config.to_json())
        os.replace(state.path / ".alloc.json.tmp", state.config_file)
        forked = self.launcher is not None and await self.launcher.launch_executor(state.path)
        if not forked:
            await _start_fresh(state)
        log.info("executor started alloc=%s/%s uid=%s by=%s", config.namespace, config.name,
                 config.alloc_uid, "launcher" if forked else "interpreter")
        return False

    async def connect(self, alloc_uid: str) -> ExecutorConnection:
        """Connect (waiting for a just-started executor to listen) and read its hello."""
        state = self.dir(alloc_uid)
        deadline = time.monotonic() + START_SECONDS
        pause = FIRST_POLL_SECONDS
        while True:
            try:
                conn = await _open(state)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if state.stopped_file.exists() or time.monotonic() > deadline:
                    raise ExecutorGone(f"no executor answers for {alloc_uid}") from None
                # The pid file first: read the other way round, an executor that
                # claims it between the two looks dead (the Alloc was lost for it).
                if state.pid_file.exists() and state.alive_pid() is None:
                    raise ExecutorGone(f"the executor of {alloc_uid} died") from None
                await asyncio.sleep(pause)
                pause = min(2 * pause, POLL_SECONDS)
        try:
            await conn.hello()
        except ExecutorGone:
            conn.close()
            raise
        return conn

    def kill(self, alloc_uid: str, attempts: int = 10) -> bool:
        """SIGKILL the executor and everything in its cgroup (it did not stop),
        and remove the cgroup; False while the cgroup is still there."""
        state = self.dir(alloc_uid)
        pid = state.alive_pid()
        if pid is not None:
            # Its tasks are in its session (each in a process group of its own).
            for member in [pid, *session_members(pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGKILL)
        return self._remove_cgroup(state, attempts)

    def remove(self, alloc_uid: str) -> bool:
        """Forget the Alloc: its cgroup, then its state directory. An executor
        that just said goodbye may not have left its cgroup yet (it is busy until
        the process is reaped): then the state stays, so the sweeper (and a test
        harness's teardown) find the cgroup and come back to it. True once gone."""
        state = self.dir(alloc_uid)
        if not self._remove_cgroup(state, attempts=10):
            log.info("alloc cgroup still busy; kept for the sweeper uid=%s", alloc_uid)
            return False
        shutil.rmtree(state.path, ignore_errors=True)
        remove_sandboxes(self.sandboxes / alloc_uid)
        return True

    @staticmethod
    def _remove_cgroup(state: ExecutorDir, attempts: int) -> bool:
        config = state.read_config() if state.config_file.exists() else None
        if config is None or config.cgroup is None:
            return True
        return ContainerCgroup.from_dict(config.cgroup).kill_and_remove(attempts)

    def retire(self, alloc_uid: str, namespace: str, name: str) -> None:
        """Keep the Alloc's task logs after it is gone (a Job's tasks are read
        after it finishes, as a finished pod's are), then remove its state. Only
        the newest RETIRED_LOGS are kept."""
        logs = self.dir(alloc_uid).task_logs
        if logs.exists():
            target = self.retired_logs(namespace, name)
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            logs.rename(target)
            self._prune_retired()
        self.remove(alloc_uid)

    def retired_logs(self, namespace: str, name: str) -> Path:
        return self.root.parent / "alloc-logs" / namespace / name

    def _prune_retired(self) -> None:
        kept = sorted(self.root.parent.glob("alloc-logs/*/*"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-RETIRED_LOGS]:
            shutil.rmtree(old, ignore_errors=True)


async def _start_fresh(state: ExecutorDir) -> None:
    """The fallback: a fresh interpreter runs the executor."""
    with open(state.log_file, "ab") as out:  # noqa: ASYNC230 - local, tiny
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", EXECUTOR_MODULE, str(state.path),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True, cwd="/", env=shim_env())
    await proc.wait()  # the first fork exits at once; the executor lives on detached


async def _open(state: ExecutorDir) -> ExecutorConnection:
    """Connect through /proc/self/fd/N/: a state directory's full path may be
    longer than a socket address (108 bytes)."""
    dir_fd = os.open(state.path, os.O_PATH | os.O_CLOEXEC)
    try:
        _, conn = await asyncio.get_running_loop().create_unix_connection(
            ExecutorConnection, f"/proc/self/fd/{dir_fd}/{state.socket_file.name}")
        return conn
    finally:
        os.close(dir_fd)


def remove_sandboxes(path: Path) -> None:
    """An Alloc's task sandboxes, then their directory. Most are empty (a task
    that wrote nothing there): one rmdir each first, then shutil.rmtree for what
    is left — it opens, stats and checks every entry, and removing a 3,000-task
    Alloc's sandboxes that way was 9% of an agent's samples in bench/offers.py."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # gone already (or not a directory of ours)
    try:
        for name in os.listdir(fd):
            with contextlib.suppress(OSError):  # not empty, or not a directory
                os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)
    shutil.rmtree(path, ignore_errors=True)


def session_members(sid: int) -> list[int]:
    """Processes of session ``sid`` other than its leader."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == sid:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after "pid (comm)": state ppid pgrp session
            found.append(int(entry.name))
    return found


class ExecutorGone(Exception):
    """The Alloc's executor has stopped (or died) and cannot take more tasks; the
    agent reports what it knows and does not start a second one for the Alloc."""
