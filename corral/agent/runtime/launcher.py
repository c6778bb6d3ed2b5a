"""The node's shim launcher: ``python -m corral.agent.runtime.launcher STATE_ROOT``.

A fresh interpreter per container costs ~0.1 s of CPU and ~12 MiB of private
memory before the shim does anything. The launcher pays that once per node: it
imports the shim code, then forks a shim per request. Forked shims share the
launcher's pages copy-on-write (``gc.freeze`` keeps the collector from touching,
and so copying, them), so a shim costs a few MiB and starts in milliseconds.
An Alloc's executor (executor.py) likewise: its interpreter and imports were
~90 ms of the agent's CPU per Alloc (bench/offers.py: a fifth of the agents'
CPU per task in a 2,000-task burst), a fork of the launcher ~4 ms (its own and
its reaped child's).

    ProcessRuntime ──"start DIR"──▶ launcher.sock ─▶ launcher
    ExecutorRuntime ─"executor DIR"─▶      │ fork
                                           ▼
                       shim: setsid, close the launcher's fds, shim.supervise(DIR)
                       executor: the same, then executor.main([DIR]) as
                                 ``python -m`` runs it (it detaches by a fork)

A shim is the launcher's child (one fork: a second, to orphan it at once, cost a
fork and exit of the whole launcher per container) in its own session, so it is
still independent of the launcher: a launcher that dies or exits touches no
running shim (they are re-parented), and a new agent adopts shims whatever
launcher (or none) started them. The launcher reaps the shims that end while it
lives, on SIGCHLD.

Files in the state root (the directory of the instances' state dirs):

    launcher.sock   the socket; requests and replies are JSON lines, answered
                    once the shim has written its first status (or died):
                    {"id": n, "start": "/abs/state/dir"}
                      → {"id": n, "ok": true} | {"id": n, "ok": false, "error": ...}
                    or once an executor is forked (the runtime then connects
                    to its socket, as after a fresh interpreter's start):
                    {"id": n, "executor": "/abs/state/allocs/<uid>"} → the same
    launcher.lock   flock'ed by the live launcher: at most one per state root, and
                    a socket file nobody holds the lock for is stale and replaced
    launcher.pid    {"pid", "start"} of the live launcher
    launcher.log    its stderr

Lifetime: the agent's runtime holds a connection open for as long as it lives.
When no client has been connected for LINGER_SECONDS (the agent stopped or
died, and no restarted agent came back) the launcher exits; the next agent
starts a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from corral.agent.runtime import executor, shim

LAUNCHER_MODULE = "corral.agent.runtime.launcher"
LAUNCHER_NAME = "corral-launcher"
SOCKET_NAME = "launcher.sock"
LOCK_NAME = "launcher.lock"
PID_NAME = "launcher.pid"
LOG_NAME = "launcher.log"
LINGER_SECONDS = 10.0
# sockaddr_un holds 108 bytes; a longer path cannot be bound (the runtime then
# starts shims the fallback way).
MAX_SOCKET_PATH = 107
EXECUTORS_DIR = "allocs"  # under the state root: one directory per Alloc uid
_LOCK_WAIT_SECONDS = 2.0
_CHILD_EXITED = object()  # selector key data of the SIGCHLD wakeup pipe


def socket_path(state_root: Path) -> Path:
    return state_root / SOCKET_NAME


def running_launcher(state_root: Path) -> int | None:
    """The pid of the state root's live launcher, checked against its start time."""
    try:
        data = json.loads((state_root / PID_NAME).read_text())
        pid, start = int(data["pid"]), int(data["start"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if shim.process_start_ticks(pid) == start and _alive(pid) else None


def stop_launcher(state_root: Path, timeout: float = 10.0) -> int | None:
    """Kill the root's launcher now (running shims are not touched); its pid,
    once it is dead (a zombie until init reaps it), or None if none ran. For
    whoever ends a node for good (`corral up` on Ctrl-C, test clean-up)."""
    pid = running_launcher(state_root)
    if pid is None:
        return None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while running_launcher(state_root) == pid and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


def take_lock(state_root: Path) -> int | None:
    """The lock fd, or None when a live launcher already serves this root. A
    launcher holding the lock but not answering is starting or exiting: wait."""
    fd = os.open(state_root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if _answers(socket_path(state_root)) or time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def bind(state_root: Path) -> socket.socket:
    """Listen on the root's socket, replacing a stale one (we hold the lock)."""
    path = socket_path(state_root)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o077)  # only the agent's user may ask for processes
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    listener.listen(128)
    return listener


class Launcher:
    """Serves start requests until no client has been connected for the linger.

    A request is answered once its shim has written its first status (running,
    or StartError) or died: the shim writes a byte to, or just closes, a "ready"
    pipe the launcher watches. Answers may so come out of order; ids match them."""

    def __init__(self, state_root: Path, listener: socket.socket, linger: float) -> None:
        self.state_root = state_root
        self.listener = listener
        self.linger = linger
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._sigchld_read, sigchld_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # the wakeup fd wakes us
        signal.set_wakeup_fd(sigchld_write, warn_on_full_buffer=False)
        self._selector.register(self._sigchld_read, selectors.EVENT_READ, _CHILD_EXITED)
        self._buffers: dict[socket.socket, bytes] = {}
        self._idle_since = time.monotonic()
        self._socket_inode = socket_path(state_root).stat().st_ino  # bound by us

    def serve(self) -> None:
        while self._buffers or time.monotonic() - self._idle_since < self.linger:
            if not self.state_root.is_dir():
                break  # the agent's state went away: nothing left to launch for
            timeout = None if self._buffers else self.linger
            for key, _ in self._selector.select(timeout):
                if key.data is None:
                    self._accept()
                elif key.data is _CHILD_EXITED:
                    self._reap()
                elif isinstance(key.data, _Pending):
                    self._answer_ready(key.data)
                else:
                    self._read(key.data)
        self._close()

    def _reap(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._sigchld_read, 4096)
        for _ in shim.reap_children():
            pass  # a shim's own status is in its state dir

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(5.0)  # replies are tiny; a client that never reads is dropped
        self._buffers[conn] = b""
        self._selector.register(conn, selectors.EVENT_READ, conn)

    def _read(self, conn: socket.socket) -> None:
        try:
            chunk = conn.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        *lines, self._buffers[conn] = (self._buffers[conn] + chunk).split(b"\n")
        for line in lines:
            self._request(conn, line)

    def _request(self, conn: socket.socket, line: bytes) -> None:
        request_id, state_dir, error = self._parse(line)
        if state_dir is not None:
            try:
                if state_dir.parent == self.state_root:
                    ready_fd = fork_shim(state_dir)
                    self._selector.register(ready_fd, selectors.EVENT_READ,
                                            _Pending(conn, request_id, ready_fd))
                    return
                fork_executor(state_dir)
                self._reply(conn, {"id": request_id, "ok": True})
                return
            except OSError as err:
                error = f"fork: {err}"
        self._reply(conn, {"id": request_id, "ok": False, "error": error})

    def _parse(self, line: bytes) -> tuple[object, Path | None, str]:
        """A shim's instance dir (right under the root, with its launch.json), or
        an Alloc executor's state dir (under EXECUTORS_DIR, with its alloc.json)."""
        try:
            request = json.loads(line)
            shim_request = "start" in request
            state_dir = Path(request["start"] if shim_request else request["executor"])
        except (ValueError, KeyError, TypeError):
            return None, None, "bad request"
        request_id = request.get("id")
        if shim_request:
            parent, marker = self.state_root, state_dir / "launch.json"
        else:
            parent = self.state_root / EXECUTORS_DIR
            marker = executor.ExecutorDir(state_dir).config_file
        if state_dir.parent != parent or not marker.exists():
            return request_id, None, f"not an instance of {parent}: {state_dir}"
        return request_id, state_dir, ""

    def _answer_ready(self, pending: _Pending) -> None:
        self._selector.unregister(pending.ready_fd)
        os.close(pending.ready_fd)
        if pending.conn in self._buffers:  # the client may have gone meanwhile
            self._reply(pending.conn, {"id": pending.request_id, "ok": True})

    def _reply(self, conn: socket.socket, reply: dict[str, object]) -> None:
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        if conn not in self._buffers:
            return
        self._selector.unregister(conn)
        del self._buffers[conn]
        conn.close()
        if not self._buffers:
            self._idle_since = time.monotonic()

    def _close(self) -> None:
        path = socket_path(self.state_root)
        try:  # only our own socket file: never one a successor bound
            if path.stat().st_ino == self._socket_inode:
                path.unlink()
        except OSError:
            pass
        self.listener.close()


@dataclass(frozen=True)
class _Pending:
    """A start request waiting for its shim's first status."""

    conn: socket.socket
    request_id: object
    ready_fd: int


def fork_shim(state_dir: Path) -> int:
    """Fork the instance's shim (in its own session); returns the read end of its
    ready pipe (see Launcher). The launcher reaps it when it ends."""
    sys.stdout.flush()
    sys.stderr.flush()
    ready_read, ready_write = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError:
        os.close(ready_read)
        os.close(ready_write)
        raise
    if pid == 0:
        _in_child(state_dir, ready_write)  # never returns
    os.close(ready_write)
    return ready_read


def _in_child(state_dir: Path, ready_fd: int) -> None:
    # Never return into the launcher's loop, whatever happens: always os._exit.
    # The launcher's socket objects stay referenced by its frames, so they are
    # never finalized here after closerange has closed their descriptors.
    code = 1
    try:
        _leave_launcher(keep_fd=ready_fd)
        _redirect_output(state_dir / "shim.log")
        code = shim.supervise(shim.StateDir(state_dir), ready_fd=3)
    except BaseException:  # noqa: BLE001 - a forked child must reach os._exit
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def fork_executor(state_dir: Path) -> None:
    """Fork an Alloc's executor: the child is what ``python -m`` of executor.py
    would be once its imports are done (its own session, output to its log,
    no fd of the launcher's), and runs its main, which detaches the executor by
    a fork of its own; the launcher reaps the child at once."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() != 0:
        return
    code = 1
    try:  # as in _in_child: never back into the launcher's loop
        _leave_launcher(keep_fd=None)
        _redirect_output(executor.ExecutorDir(state_dir).log_file)
        code = executor.main([str(state_dir)])
    except BaseException:  # noqa: BLE001 - a forked child must reach os._exit
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _leave_launcher(keep_fd: int | None) -> None:
    """In a forked child: drop the launcher's signal set-up and descriptors
    (``keep_fd`` goes to fd 3; dup2 clears close-on-exec), and take a session."""
    signal.set_wakeup_fd(-1)  # the launcher's; the child sets up its own
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    first = 3
    if keep_fd is not None:
        os.dup2(keep_fd, 3)
        first = 4
    os.closerange(first, os.sysconf("SC_OPEN_MAX"))  # the socket, the lock, clients
    os.setsid()


def _redirect_output(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _detach(state_root: Path) -> None:
    """Double fork: the runtime's spawn returns once the socket listens, and the
    launcher lives on in its own session."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    shim.set_process_name(LAUNCHER_NAME)
    pid = os.getpid()
    shim.write_json_atomic(state_root / PID_NAME,
                           {"pid": pid, "start": shim.process_start_ticks(pid)})


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(f"usage: python -m {LAUNCHER_MODULE} STATE_ROOT [LINGER_SECONDS]",
              file=sys.stderr)
        return 2
    state_root = Path(argv[0]).resolve()
    linger = float(argv[1]) if len(argv) == 2 else LINGER_SECONDS
    if len(str(socket_path(state_root))) > MAX_SOCKET_PATH:
        print(f"socket path too long under {state_root}", file=sys.stderr)
        return 2
    lock_fd = take_lock(state_root)  # held (open) for the launcher's whole life
    if lock_fd is None:
        return 0  # a live launcher serves this root
    listener = bind(state_root)
    _detach(state_root)
    gc.freeze()  # everything imported so far stays shared with forked shims
    Launcher(state_root, listener, linger).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
