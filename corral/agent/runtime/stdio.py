"""A container's stdio as its shim sets it up, interactive when the pod asks
(``stdin: true``, ``tty: true``), so that ``kubectl attach`` / ``run -it`` reach it.

    plain        stdin /dev/null; stdout, stderr pipes ─► the log (LinePump)
    stdin        + a FIFO ``stdin`` in the state directory: the agent's attach
                 writes it, the shim copies it to the command's stdin pipe; the
                 shim keeps a write end of its own open, so the command sees no
                 EOF between attaches
    tty          the command's stdin/stdout/stderr are a pty's slave (its
                 controlling terminal); the shim reads the master into the log as
                 stdout, writing a partial line at once (a prompt has no newline),
                 so an attach that follows the log sees it; ``tty.json`` names the
                 slave, through which the agent sets the terminal size
    SIGUSR2      stdinOnce: the first attach has ended; the command's stdin is
                 closed (a terminal gets ^D)

Bytes waiting for a command that does not read its stdin are kept (up to
MAX_PENDING) and retried, never blocking the shim's loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import subprocess
import termios
from collections.abc import Callable
from pathlib import Path
from typing import Any

STDIN_FIFO = "stdin"
TTY_FILE = "tty.json"
MAX_PENDING = 1 << 20


class ContainerStdio:
    def __init__(self, state_path: Path, stdin: bool, tty: bool) -> None:
        self.path = state_path
        self.stdin = stdin
        self.tty = tty
        self.fifo: int | None = None  # the FIFO's read end, in the shim's selector
        self.master: int | None = None  # the pty's master (tty)
        self._fifo_keep: int | None = None
        self._to_command: int | None = None
        self._child_ends: list[int] = []
        self.pending = b""

    def popen_kwargs(self) -> dict[str, Any]:
        """stdin/stdout/stderr (and the session) for Popen."""
        if self.tty:
            master, slave = pty.openpty()
            os.set_blocking(master, False)
            self.master, self._child_ends = master, [slave]
            (self.path / TTY_FILE).write_text(json.dumps({"path": os.ttyname(slave)}))
            if self.stdin:
                self._to_command = master
            self._open_fifo()
            return {"stdin": slave, "stdout": slave, "stderr": slave, "start_new_session": True}
        stdin: int = subprocess.DEVNULL
        if self.stdin:
            stdin, self._to_command = os.pipe()
            os.set_blocking(self._to_command, False)
            self._child_ends = [stdin]
            self._open_fifo()
        return {"stdin": stdin, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
                "process_group": 0}

    def _open_fifo(self) -> None:
        if not self.stdin:
            return
        fifo = self.path / STDIN_FIFO
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo, 0o600)
        self.fifo = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._fifo_keep = os.open(fifo, os.O_WRONLY)

    def preexec(self, inner: Callable[[], None] | None) -> Callable[[], None] | None:
        """What the child runs before exec: ``inner``, and with a tty, taking the
        pty as its controlling terminal (after Popen's setsid)."""
        if not self.tty:
            return inner

        def take_terminal() -> None:
            if inner is not None:
                inner()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        return take_terminal

    def spawned(self) -> None:
        for fd in self._child_ends:
            os.close(fd)
        self._child_ends = []

    def outputs(self, popen: subprocess.Popen[bytes]) -> list[tuple[int, str]]:
        if self.master is not None:
            return [(self.master, "stdout")]
        assert popen.stdout is not None and popen.stderr is not None
        return [(popen.stdout.fileno(), "stdout"), (popen.stderr.fileno(), "stderr")]

    def from_fifo(self) -> None:
        """The FIFO is readable: take what an attach wrote."""
        assert self.fifo is not None
        with contextlib.suppress(BlockingIOError):
            data = os.read(self.fifo, 65536)
            if self._to_command is not None and len(self.pending) < MAX_PENDING:
                self.pending += data
        self.flush()

    def flush(self) -> None:
        if not self.pending or self._to_command is None:
            self.pending = b""
            return
        try:
            self.pending = self.pending[os.write(self._to_command, self.pending):]
        except BlockingIOError:
            pass
        except OSError:  # the command closed its stdin
            self.pending = b""

    def close_stdin(self) -> None:
        """stdinOnce: the command reads EOF once what is pending is through."""
        fd, self._to_command = self._to_command, None
        if fd is None:
            return
        with contextlib.suppress(OSError):  # one try: a command that does not read loses it
            os.write(fd, self.pending + (b"\x04" if fd == self.master else b""))
        if fd != self.master:
            os.close(fd)
        self.pending = b""

    def close(self) -> None:
        for fd in {self.fifo, self._fifo_keep, self._to_command, self.master} - {None}:
            assert fd is not None
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fifo = self._fifo_keep = self._to_command = self.master = None
