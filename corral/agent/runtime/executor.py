"""The executor: one process per Alloc that starts many short tasks in it.

A shim per task costs a forked Python process (~16 ms of CPU) and a handful of
files; a batch of 100,000 tasks cannot pay that. The executor is started once
per Alloc, joins the Alloc's cgroup (so every task it starts is inside), and
starts each task with ``os.posix_spawn`` — vfork and exec, the executor's memory
is never copied. Like a shim it is detached and outlives the agent, which
re-adopts it through its socket.

    agent ──unix socket (JSON lines)──▶ executor ──posix_spawn──▶ task, task, ...
          ◀── hello, exits (seq) ──────      ▲ SIGCHLD, output pipes
          ── ack seq ─────────────────▶      │ (one per task, read only if it prints)

The task interface is general (task arrays use it, Mesos frameworks will):

    {"op": "launch", "id": "17", "command": [...], "env": {...}, "cwd": "/...",
     "user": {"uid": 1000, "gid": 1000, "groups": [...]}}   user: optional (task_spawn.py)
    {"op": "launch", "tasks": [{"id", "command", "env", "cwd", "user", "notify"}, ...]}
                                                  a batch; notify: say "started"
    {"op": "resize", "slots": n, "cpu_request_millis", "cpu_limit_millis",
     "memory_limit_bytes"}                        the Alloc grew or shrank
    {"op": "kill", "id": "17", "signal": 15}     a queued task is dropped, a running
                                                  one signalled (its process group)
    {"op": "ack", "seq": 41}                      exits up to 41 are recorded: forget them
    {"op": "stop", "grace": 5}                    TERM every task, KILL after the grace,
                                                  then exit (the Alloc is going away)
    ◀ {"event": "hello", "pid": ..., "running": [...], "queued": [...], "slots": n,
       "exited": [...]}                         ids of the unacknowledged exits that follow
    ◀ {"seq": 42, "event": "exited", "id": "17", "code": 0, "signal": null,
       "reason": "Completed"}
    ◀ {"event": "started", "id": "17"}            its process runs (no seq: not kept)

At most ``slots`` tasks run at once; further launches wait in order. A task's
working directory that does not exist (a framework task's sandbox) is made for
it; once the task has ended, an empty one is renamed to be the next sandbox of
the same user beside it instead of a new one (task_spawn.prepare_cwd). Each round
of the loop reads exits and output first and reports them before it spawns
what waits: each spawn waits for its child's exec. Exits stay
buffered until acknowledged, and a new connection gets every unacknowledged one
again: an agent that died between a task's exit and recording it learns of it
from the next agent (completions are recorded before they are acknowledged).

Task output goes to the Alloc's one log (``logs/0.log``, rotated, bounded), in the
CRI format with the task id as the stream ("<time> 17 F hello": stdout and
stderr share one pipe per task); a task that prints nothing writes nothing.

SIGUSR1 makes it write its state (tasks running and queued, exits unacknowledged)
to executor.log, for an operator; SIGTERM is a "stop" with a 10 s grace.

State directory (made by the agent):
    alloc.json     ExecutorConfig        executor.pid  {"pid", "start"} (claimed exclusively)
    executor.sock  the socket            executor.log  the executor's own stderr
    logs/0.log*    task output           stopped       written when it exits after "stop"
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from corral.agent.runtime.base import RunAs
from corral.agent.runtime.cgroups import ContainerCgroup, Limits
from corral.agent.runtime.logs import MAX_LINE, LogWriter, log_path
from corral.agent.runtime.shim import (
    SignalPipe,
    process_start_ticks,
    reap_children,
    set_process_name,
)
from corral.agent.runtime.task_spawn import needs_switch, prepare_cwd, real_ids_of, start_error

EXECUTOR_MODULE = "corral.agent.runtime.executor"
EXECUTOR_NAME = "corral-executor"
TASK_LOGS = "logs"  # logs/0.log (+ .1, .2): LogFiles' layout, one stream per task
START_ERROR_EXIT_CODE = 128
_PR_SET_CHILD_SUBREAPER = 36
MAX_SPARE_DIRS = 64  # per user and place: a task that ends hands its empty sandbox on


@dataclass
class ExecutorConfig:
    """alloc.json: what the agent tells the executor once, at start."""

    alloc_uid: str
    namespace: str
    name: str
    slots: int = 1
    cgroup: dict[str, Any] | None = None  # ContainerCgroup.to_dict(), or None (no cgroups)
    cpu_request_millis: int | None = None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    log_max_bytes: int = 10 * 1024 * 1024  # per file
    log_max_files: int = 3
    path: str = field(default_factory=lambda: os.environ.get("PATH", os.defpath))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ExecutorConfig:
        return cls(**json.loads(text))


class ExecutorDir:
    """The files of one Alloc's executor (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_file = self.path / "alloc.json"
        self.pid_file = self.path / "executor.pid"
        self.socket_file = self.path / "executor.sock"
        self.log_file = self.path / "executor.log"
        self.stopped_file = self.path / "stopped"
        self.task_logs = self.path / TASK_LOGS

    def read_config(self) -> ExecutorConfig:
        return ExecutorConfig.from_json(self.config_file.read_text())

    def identity(self) -> tuple[int, int] | None:
        try:
            data = json.loads(self.pid_file.read_text())
            return int(data["pid"]), int(data["start"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def alive_pid(self) -> int | None:
        """The executor's pid if it runs (not a recycled pid), else None."""
        identity = self.identity()
        if identity is None or process_start_ticks(identity[0]) != identity[1]:
            return None
        try:
            state = Path(f"/proc/{identity[0]}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return identity[0] if state != "Z" else None

    def claim(self) -> bool:
        pid = os.getpid()
        tmp = self.path / f".executor.pid.{pid}.tmp"
        tmp.write_text(json.dumps({"pid": pid, "start": process_start_ticks(pid)}))
        try:
            os.link(tmp, self.pid_file)  # atomic, and fails if another executor has it
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()


@dataclass
class Task:
    id: str
    command: list[str]
    env: dict[str, str]
    cwd: str
    user: RunAs | None = None  # None: the executor's own
    switch: RunAs | None = None  # the user, if another than the executor's
    pid: int = 0
    out_fd: int = -1  # read end of the task's stdout+stderr pipe
    buffer: bytes = b""
    exit_status: int | None = None
    notify: bool = False  # say "started" once it runs (a framework's task: TASK_RUNNING)
    new_cwd: bool = False  # its working directory was made for it (a sandbox)


class TaskLog:
    """The Alloc's task output, opened on the first line any task prints."""

    def __init__(self, path: Path, max_bytes: int, max_files: int) -> None:
        self.path, self.max_bytes, self.max_files = path, max_bytes, max_files
        self._writer: LogWriter | None = None

    def write(self, task_id: str, line: bytes, partial: bool = False) -> None:
        if self._writer is None:
            self._writer = LogWriter(self.path, self.max_bytes, self.max_files)
        self._writer.write_line(task_id, line, partial)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class Executor:
    """The executor's whole life: serve the socket, run tasks, until stopped."""

    def __init__(self, state: ExecutorDir) -> None:
        self.dir = state
        self.config = state.read_config()
        self.cgroup = (ContainerCgroup.from_dict(self.config.cgroup)
                       if self.config.cgroup else None)
        self.selector = selectors.DefaultSelector()
        self.queue: deque[Task] = deque()
        self.running: dict[int, Task] = {}  # pid → task
        self.by_id: dict[str, Task] = {}
        self.others: dict[RunAs, bool] = {}  # users seen: another than the executor's?
        # Empty sandboxes of ended tasks, for the next task of the same user and place.
        self.spare_dirs: dict[tuple[str, int, int], list[str]] = {}
        self.unacked: deque[tuple[int, bytes]] = deque()  # (seq, event line)
        self.seq = 0
        self.conn: socket.socket | None = None
        self.inbox = b""
        self.outbox = b""
        self.log = TaskLog(log_path(state.task_logs, 0), self.config.log_max_bytes,
                           self.config.log_max_files)
        self.stop_deadline: float | None = None
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    # -- setup -------------------------------------------------------------------------

    def run(self) -> int:
        signals = SignalPipe()
        self.selector.register(signals.read_fd, selectors.EVENT_READ, signals)
        if self.cgroup is not None:
            self.cgroup.create(Limits(self.config.cpu_request_millis,
                                      self.config.cpu_limit_millis,
                                      self.config.memory_limit_bytes))
            self.cgroup.join(os.getpid())  # every task starts inside, with no per-task write
        listener = self._listen()
        self.selector.register(listener, selectors.EVENT_READ, "listen")
        try:
            while not self._finished():
                self._poll()
        finally:
            self._shut_down(listener)
        return 0

    def _listen(self) -> socket.socket:
        self.dir.socket_file.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bound by a relative name: a state directory's full path may be longer
        # than a socket address (108 bytes). Tasks start in "/", not here.
        os.chdir(self.dir.path)
        try:
            listener.bind(self.dir.socket_file.name)
        finally:
            os.chdir("/")
        listener.listen(4)
        listener.setblocking(False)
        return listener

    def _finished(self) -> bool:
        return self.stop_deadline is not None and not self.running and not self.queue

    def _shut_down(self, listener: socket.socket) -> None:
        self._flush_before_exit()
        self.log.close()
        listener.close()
        self.dir.socket_file.unlink(missing_ok=True)
        self.dir.stopped_file.write_text(str(time.time()))
        if self.cgroup is not None:
            self.cgroup.remove()  # the executor itself is still inside: best effort

    # -- the loop ----------------------------------------------------------------------

    def _poll(self) -> None:
        timeout = None
        if self.stop_deadline is not None:
            timeout = max(0.0, self.stop_deadline - time.monotonic())
        for key, mask in self.selector.select(timeout):
            if isinstance(key.data, SignalPipe):
                self._on_signals(key.data.received())
            elif key.data == "listen":
                self._accept(key.fileobj)  # type: ignore[arg-type]
            elif key.data == "conn":
                if mask & selectors.EVENT_READ:
                    self._on_conn_readable()
            else:
                self._read_output(key.data)
        if self.stop_deadline is not None and time.monotonic() >= self.stop_deadline:
            for pid in list(self.running):
                _killpg(pid, signal.SIGKILL)
            if self.cgroup is not None:
                for pid in self.cgroup.pids():
                    if pid != os.getpid():
                        _kill(pid)
        if self.queue and len(self.running) < self.config.slots:
            # Exits read in this round go out before the spawns, each of which
            # waits for its child's exec: a batch of them takes milliseconds.
            self._flush()
            self._start_queued()
        self._flush()

    def _on_signals(self, signums: list[int]) -> None:
        if signal.SIGCHLD in signums:
            for pid, wait_status in reap_children():
                self._exited(pid, wait_status)
        if any(s in signums for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)):
            self.stop(10.0)
        if signal.SIGUSR1 in signums:  # an operator asks what it is doing
            _note(f"state: running={[t.id for t in self.running.values()]} "
                  f"queued={[t.id for t in self.queue]} unacked={len(self.unacked)} "
                  f"seq={self.seq} outbox={len(self.outbox)} inbox={len(self.inbox)} "
                  f"connected={self.conn is not None}")

    # -- the agent's connection ------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        if self.conn is not None:  # a newer agent replaces the old connection
            _note("a new connection replaces the old one")
            self._drop_conn()
        conn.setblocking(False)
        self.conn, self.inbox, self.outbox = conn, b"", b""
        self.selector.register(conn, selectors.EVENT_READ, "conn")
        hello = {"event": "hello", "pid": os.getpid(), "slots": self.config.slots,
                 "running": [t.id for t in self.running.values()],
                 "queued": [t.id for t in self.queue],
                 # Exits that follow this hello: the agent must not launch these
                 # again before it has read them.
                 "exited": [json.loads(line)["id"] for _, line in self.unacked]}
        self.outbox = json.dumps(hello).encode() + b"\n" + b"".join(
            line for _, line in self.unacked)

    def _drop_conn(self) -> None:
        if self.conn is not None:
            self.selector.unregister(self.conn)
            self.conn.close()
            self.conn = None

    def _on_conn_readable(self) -> None:
        assert self.conn is not None
        try:
            data = self.conn.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            _note("the agent closed its connection")
            self._drop_conn()
            return
        *lines, self.inbox = (self.inbox + data).split(b"\n")
        for line in lines:
            if line:
                self._handle(orjson.loads(line))

    def _handle(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "launch":
            for task in msg.get("tasks") or [msg]:  # one, or a batch
                self.launch(str(task["id"]), list(task["command"]),
                            dict(task.get("env") or {}), str(task.get("cwd") or "/"),
                            _run_as(task.get("user")), notify=bool(task.get("notify")))
        elif op == "kill":
            self.kill(str(msg["id"]), int(msg.get("signal") or signal.SIGTERM))
        elif op == "ack":
            seq = int(msg["seq"])
            while self.unacked and self.unacked[0][0] <= seq:
                self.unacked.popleft()
        elif op == "stop":
            self.stop(float(msg.get("grace") or 0))
        elif op == "slots":
            self.config.slots = max(1, int(msg["slots"]))
        elif op == "resize":
            self.resize(msg)

    def _flush(self) -> None:
        if self.conn is None:
            return
        if self.outbox:
            try:
                sent = self.conn.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._drop_conn()
                return
            self.outbox = self.outbox[sent:]
        # Wait for writability only while something is left to send.
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbox else 0)
        if self.selector.get_key(self.conn).events != want:
            self.selector.modify(self.conn, want, "conn")

    def _flush_before_exit(self) -> None:
        if self.conn is None or not self.outbox:
            return
        try:
            self.conn.settimeout(2.0)
            self.conn.sendall(self.outbox)
        except OSError:
            pass

    def _emit(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event["seq"] = self.seq
        line = orjson.dumps(event) + b"\n"
        self.unacked.append((self.seq, line))
        if self.conn is not None:
            self.outbox += line

    # -- tasks -------------------------------------------------------------------------

    def launch(self, task_id: str, command: list[str], env: dict[str, str], cwd: str,
               user: RunAs | None = None, *, notify: bool = False) -> None:
        if task_id in self.by_id or self.stop_deadline is not None:
            return  # a duplicate launch (an agent resending after reconnecting), or stopping
        task = Task(task_id, command, {"PATH": self.config.path, **env}, cwd, user,
                    notify=notify)
        if user is not None:
            if user not in self.others:
                self.others[user] = needs_switch(user)
            task.switch = user if self.others[user] else None
        self.by_id[task_id] = task
        self.queue.append(task)

    def resize(self, msg: dict[str, Any]) -> None:
        """The Alloc grew or shrank (a framework's, as its tasks come and go). The
        cgroup's files are written only when a limit changed: a framework's
        Alloc is resized for its slots alone at nearly every launch."""
        self.config.slots = max(1, int(msg.get("slots") or 1))
        names = ("cpu_request_millis", "cpu_limit_millis", "memory_limit_bytes")
        before = [getattr(self.config, name) for name in names]
        for name in names:
            setattr(self.config, name, msg.get(name))
        if self.cgroup is not None and before != [getattr(self.config, n) for n in names]:
            try:
                self.cgroup.create(Limits(self.config.cpu_request_millis,
                                          self.config.cpu_limit_millis,
                                          self.config.memory_limit_bytes))
            except OSError as err:
                _note(f"limits not changed: {err}")

    def _start_queued(self) -> None:
        while self.queue and len(self.running) < self.config.slots:
            self._spawn(self.queue.popleft())

    def _spawn(self, task: Task) -> None:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        # stdin from /dev/null, stdout and stderr into one pipe; the task gets its
        # own process group so that a kill reaches whatever it started.
        actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, write_fd, 1),
                   (os.POSIX_SPAWN_DUP2, write_fd, 2)]
        user = task.switch
        spares = self.spare_dirs.get(_place(task))
        try:
            task.new_cwd = prepare_cwd(task.cwd, user, spares.pop() if spares else None)
            with real_ids_of(user) if user is not None else contextlib.nullcontext():
                if task.cwd in ("", "/"):
                    task.pid = os.posix_spawnp(task.command[0], task.command, task.env,
                                               file_actions=actions, setpgroup=0,
                                               resetids=user is not None)
                else:
                    task.pid = _spawn_in(task, actions, user is not None)
        except (OSError, IndexError) as exc:
            os.close(read_fd)
            os.close(write_fd)
            self.by_id.pop(task.id, None)
            message = start_error(exc, task.command, task.cwd, task.user)
            self.log.write(task.id, message.encode())
            self._emit({"event": "exited", "id": task.id, "code": START_ERROR_EXIT_CODE,
                        "signal": None, "reason": "StartError", "message": message})
            return
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        task.out_fd = read_fd
        self.selector.register(read_fd, selectors.EVENT_READ, task)
        self.running[task.pid] = task
        if task.notify and self.conn is not None:  # TASK_RUNNING for a framework's task
            self.outbox += orjson.dumps({"event": "started", "id": task.id}) + b"\n"

    def _read_output(self, task: Task) -> None:
        try:
            chunk = os.read(task.out_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            task.buffer += chunk
            *lines, task.buffer = task.buffer.split(b"\n")
            for line in lines:
                self.log.write(task.id, line)
            while len(task.buffer) >= MAX_LINE:
                self.log.write(task.id, task.buffer[:MAX_LINE], partial=True)
                task.buffer = task.buffer[MAX_LINE:]
            return
        self._close_output(task)
        self._report_if_done(task)

    def _close_output(self, task: Task) -> None:
        if task.out_fd < 0:
            return
        if task.buffer:
            self.log.write(task.id, task.buffer)
            task.buffer = b""
        self.selector.unregister(task.out_fd)
        os.close(task.out_fd)
        task.out_fd = -1

    def _exited(self, pid: int, wait_status: int) -> None:
        task = self.running.pop(pid, None)
        if task is None:
            return  # an orphaned grandchild we reaped as subreaper
        task.exit_status = wait_status
        if task.out_fd >= 0:
            _killpg(pid, signal.SIGKILL)  # leftovers of the task keep its pipe open
        self._report_if_done(task)

    def _report_if_done(self, task: Task) -> None:
        """An exit is reported once the task is reaped and its output drained."""
        if task.exit_status is None or task.out_fd >= 0 or task.id not in self.by_id:
            return
        del self.by_id[task.id]
        if task.new_cwd:
            spares = self.spare_dirs.setdefault(_place(task), [])
            if len(spares) < MAX_SPARE_DIRS:
                spares.append(task.cwd)
        status = task.exit_status
        if os.WIFSIGNALED(status):
            sig: int | None = os.WTERMSIG(status)
            code = 128 + (sig or 0)
        else:
            sig, code = None, os.waitstatus_to_exitcode(status)
        self._emit({"event": "exited", "id": task.id, "code": code, "signal": sig,
                    "reason": "Completed" if code == 0 else "Error"})

    def kill(self, task_id: str, sig: int) -> None:
        task = self.by_id.get(task_id)
        if task is None:
            return
        if task.pid == 0:  # still queued: it never runs
            self.queue.remove(task)
            del self.by_id[task_id]
            self._emit({"event": "exited", "id": task_id, "code": 128 + signal.SIGKILL,
                        "signal": signal.SIGKILL, "reason": "Killed"})
            return
        _killpg(task.pid, sig)

    def stop(self, grace: float) -> None:
        """Drop what waits, TERM what runs, KILL it after ``grace``, then exit."""
        deadline = time.monotonic() + max(0.0, grace)
        if self.stop_deadline is not None and self.stop_deadline <= deadline:
            return
        first = self.stop_deadline is None
        self.stop_deadline = deadline
        while self.queue:
            self.kill(self.queue[0].id, signal.SIGKILL)
        if first:
            for pid in list(self.running):
                _killpg(pid, signal.SIGTERM)


def _spawn_in(task: Task, actions: list[tuple[int, int, int]], resetids: bool) -> int:
    """posix_spawn has no chdir action before Python 3.13: the executor (one
    thread) enters the task's working directory for the spawn and leaves it
    after, which the child inherits — rather than a ``sh -c 'cd DIR && exec ...'``
    in front of every task, whose exec cost a framework's /bin/true task about
    as much CPU again as its own. Within ``real_ids_of`` the real ids are the
    task user's, so ``os.access`` tells whether the user may enter it (the
    executor, root, always could): a directory it may not is a start error."""
    if not os.access(task.cwd, os.X_OK):
        err = errno.ENOENT if not os.path.isdir(task.cwd) else errno.EACCES
        raise OSError(err, os.strerror(err), task.cwd)
    home = os.getcwd()
    os.chdir(task.cwd)
    try:
        return os.posix_spawnp(task.command[0], task.command, task.env, file_actions=actions,
                               setpgroup=0, resetids=resetids)
    finally:
        os.chdir(home)


def _place(task: Task) -> tuple[str, int, int]:
    """Whose ended tasks' sandboxes a task may take: its user's, beside its own."""
    user = task.user
    return (os.path.dirname(task.cwd), user.uid if user else -1, user.gid if user else -1)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _run_as(value: object) -> RunAs | None:
    return RunAs.from_dict(value) if isinstance(value, dict) else None


def _note(message: str) -> None:
    """One line in executor.log (its stderr) about something that matters."""
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def become_executor(state: ExecutorDir) -> bool:
    import ctypes

    try:  # orphans of tasks are re-parented to us and reaped
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    set_process_name(EXECUTOR_NAME)
    return state.claim()


def main(argv: list[str]) -> int:
    """``python -m corral.agent.runtime.executor STATE_DIR``: detached by a double
    fork, so the agent reaps the first process at once and the executor lives on
    in its own session."""
    if len(argv) != 1:
        print(f"usage: python -m {EXECUTOR_MODULE} STATE_DIR", file=sys.stderr)
        return 2
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    state = ExecutorDir(argv[0])
    if not become_executor(state):
        print(f"another executor runs {state.path}; exiting", file=sys.stderr)
        return 0
    return Executor(state).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
