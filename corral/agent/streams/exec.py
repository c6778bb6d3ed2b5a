"""``kubectl exec`` on the node: a command run in a container's environment.

    query (command, stdin, stdout, stderr, tty) ─► ExecOptions
    runtime.exec_environment(instance) ─► env, working dir, cgroup.procs files
    argv:  [setsid --ctty] [nsenter --mount=NS]  sh -c JOIN_CGROUP N procs...  program args...
           (a tty makes the command a session leader with the pty as its terminal;
            the shell writes its own pid into the container's cgroups, then execs)
    pipes (or one pty) ◄──► channels 0/1/2, resize on 4 ─► exit code on 3

The program is looked up on the container's PATH first, so that a missing one is
an error Status (as the kubelet's ``executable file not found in $PATH``) rather
than an exit code of the wrapper shell. The command is killed (its process
group) when the client goes away; it dies with the container too, being in its
cgroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from corral.agent.runtime.base import ExecEnvironment
from corral.agent.streams import fdio
from corral.agent.streams.channels import (
    CLOSE,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    ChannelSocket,
    Message,
    exit_status,
)
from corral.objects import Obj

DRAIN_SECONDS = 2.0  # after the command exits: how long a leftover may hold its output
FIRST_SIZE_SECONDS = 1.0  # how long a command with a terminal waits for the client's size
JOIN_CGROUP = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 126; '
               'shift; n=$((n-1)); done; exec "$@"')


class ExecError(Exception):
    """The command cannot be run at all (reported as an InternalError Status)."""


def _flag(params: Mapping[str, str], name: str) -> bool:
    return params.get(name, "").lower() in ("1", "true")


@dataclass(frozen=True)
class ExecOptions:
    command: list[str]
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False

    @classmethod
    def from_query(cls, command: list[str], params: Mapping[str, str]) -> ExecOptions:
        tty = _flag(params, "tty")
        return cls(command, _flag(params, "stdin"), _flag(params, "stdout"),
                   _flag(params, "stderr") and not tty, tty)


def command_argv(opts: ExecOptions, env: ExecEnvironment) -> list[str]:
    program = opts.command[0] if opts.command else ""
    found = shutil.which(program, path=env.env.get("PATH")) if program else None
    if found is None:
        raise ExecError(f'failed to exec in container: exec: "{program}": '
                        "executable file not found in $PATH")
    argv = [found, *opts.command[1:]]
    if env.run_as is not None:  # after the cgroup join below, which takes root;
        argv = [*env.run_as.setpriv(), *opts.command]  # the user's own $PATH lookup
    if env.cgroup_procs:
        argv = ["/bin/sh", "-c", JOIN_CGROUP, "sh", str(len(env.cgroup_procs)),
                *env.cgroup_procs, *argv]
    if env.mount_ns:  # the container's view: its ServiceAccount token, for one
        # (entering a mount namespace moves to its root: --wd keeps the directory)
        argv = ["nsenter", f"--mount={env.mount_ns}", f"--wd={env.working_dir}", "--", *argv]
    if opts.tty:
        argv = ["setsid", "--ctty", *argv]
    return argv


def resize_terminal(fd: int, raw: bytes) -> None:
    """Set a terminal's size from a resize message ({"Width": w, "Height": h})."""
    try:
        size = json.loads(raw)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return  # a malformed resize changes nothing
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class ExecSession:
    """One command and its streams; ``run`` returns the Status to send, or None
    when the client went away first."""

    def __init__(self, opts: ExecOptions, env: ExecEnvironment) -> None:
        self.opts = opts
        self.env = env
        self.stdin_fd: int | None = None
        self.outputs: list[tuple[int, int]] = []  # (fd, channel)
        self.pty_fd: int | None = None
        self._child_fds: list[int] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._messages: AsyncIterator[Message] | None = None
        self._first: asyncio.Future[Message] | None = None  # read before the command ran

    def _pipe(self, parent_reads: bool) -> tuple[int, int]:
        """(parent's end, child's end)"""
        r, w = os.pipe()
        parent, child = (r, w) if parent_reads else (w, r)
        os.set_blocking(parent, False)
        os.set_inheritable(parent, False)
        self._child_fds.append(child)
        return parent, child

    def _stdio(self) -> tuple[int, int, int]:
        devnull = subprocess.DEVNULL
        if self.opts.tty:
            master, slave = pty.openpty()
            os.set_blocking(master, False)
            self.pty_fd, self._child_fds = master, [slave]
            self.stdin_fd = master if self.opts.stdin else None
            self.outputs = [(master, STDOUT)] if self.opts.stdout else []
            return slave, slave, slave
        stdin = stdout = stderr = devnull
        if self.opts.stdin:
            self.stdin_fd, stdin = self._pipe(parent_reads=False)
        if self.opts.stdout:
            fd, stdout = self._pipe(parent_reads=True)
            self.outputs.append((fd, STDOUT))
        if self.opts.stderr:
            fd, stderr = self._pipe(parent_reads=True)
            self.outputs.append((fd, STDERR))
        return stdin, stdout, stderr

    async def start(self, sock: ChannelSocket) -> None:
        """Spawn the command; with a terminal, once the client has sent its size
        (kubectl does at once; waiting up to FIRST_SIZE_SECONDS), so that the
        command starts with it rather than racing the first resize."""
        argv = command_argv(self.opts, self.env)
        stdin, stdout, stderr = self._stdio()
        self._messages = sock.messages()
        if self.pty_fd is not None:
            self._first = asyncio.ensure_future(anext(self._messages))
            await asyncio.wait({self._first}, timeout=FIRST_SIZE_SECONDS)
            if self._first.done() and not self._first.exception() and \
                    self._first.result().channel == RESIZE:
                resize_terminal(self.pty_fd, self._first.result().data)
                self._first = None
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=self.env.working_dir,
                env=self.env.env, start_new_session=not self.opts.tty)
        except OSError as err:
            self.close()
            where = f"chdir to {self.env.working_dir!r}: " if err.filename == \
                self.env.working_dir else ""
            raise ExecError(f"failed to exec in container: {where}{err.strerror}") from err
        finally:
            for fd in self._child_fds:
                os.close(fd)
            self._child_fds = []

    async def run(self, sock: ChannelSocket) -> Obj | None:
        assert self._proc is not None, "start() first"
        pumps = [asyncio.create_task(self._pump_out(sock, fd, ch)) for fd, ch in self.outputs]
        inputs = asyncio.create_task(self._pump_in())
        exited = asyncio.create_task(self._proc.wait())
        try:
            await asyncio.wait({exited, inputs}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():  # the client is gone: so is the command
                self._kill()
                await exited
                return None
            if pumps:
                await asyncio.wait(pumps, timeout=DRAIN_SECONDS)
            code = exited.result()
            return exit_status(128 - code if code < 0 else code)
        finally:
            for task in (*pumps, inputs, exited):
                task.cancel()
            await asyncio.gather(*pumps, inputs, exited, return_exceptions=True)
            self._kill()
            self.close()

    async def _pump_out(self, sock: ChannelSocket, fd: int, channel: int) -> None:
        while chunk := await fdio.read(fd):
            await sock.send(channel, chunk)

    async def _pump_in(self) -> None:
        assert self._messages is not None
        if self._first is not None:  # read while waiting for the size, not a resize
            try:
                await self._take(await self._first)
            except StopAsyncIteration:
                return  # the client is gone
        async for message in self._messages:
            await self._take(message)

    async def _take(self, message: Message) -> None:
        if message.channel == STDIN and self.stdin_fd is not None:
            try:
                await fdio.write(self.stdin_fd, message.data)
            except OSError:
                self._close_stdin()  # the command stopped reading
        elif message.channel == RESIZE and self.pty_fd is not None:
            resize_terminal(self.pty_fd, message.data)
        elif message.channel == CLOSE and message.data[:1] == bytes([STDIN]):
            self._close_stdin()

    def _close_stdin(self) -> None:
        fd, self.stdin_fd = self.stdin_fd, None
        if fd is not None and fd != self.pty_fd:
            os.close(fd)
        elif fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, b"\x04")  # a terminal's EOF: ^D

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def close(self) -> None:
        if self._first is not None and not self._first.done():
            self._first.cancel()
        fds = {fd for fd, _ in self.outputs} | {self.stdin_fd, self.pty_fd}
        for fd in fds - {None}:
            assert fd is not None
            with contextlib.suppress(OSError):
                os.close(fd)
        self.outputs, self.stdin_fd, self.pty_fd = [], None, None
