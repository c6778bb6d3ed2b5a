"""``kubectl attach`` (and ``run -it``) on the node: the running container's stdio.

    output   the instance's log followed from now on, as written (partial lines at
             once: a terminal's prompt has no newline); stdout on channel 1, stderr
             on 2 — or both on 1 when the client has a terminal
    stdin    (a container with ``stdin: true``) written to the FIFO its shim reads
             (runtime/stdio.py); a container without it drops what the client sends
    resize   (``tty: true``) set on the container's terminal
    end      a Success Status when the container exits; with ``stdinOnce`` the
             container's stdin is closed when the first attach's stdin ends (the
             client closed it, v5) or the attach does
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

from corral.agent.runtime.base import AttachTarget
from corral.agent.runtime.logs import LogFiles
from corral.agent.streams import fdio
from corral.agent.streams.channels import (
    CLOSE,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    ChannelSocket,
    success,
)
from corral.agent.streams.exec import ExecOptions, resize_terminal
from corral.objects import Obj


class AttachSession:
    def __init__(self, sock: ChannelSocket, files: LogFiles, attempt: int,
                 finished: Callable[[], bool], target: AttachTarget,
                 opts: ExecOptions, end_stdin: Callable[[], None]) -> None:
        self.sock = sock
        self.files = files
        self.attempt = attempt
        self.finished = finished
        self.target = target
        self.opts = opts
        self.end_stdin = end_stdin  # closes the container's stdin (stdinOnce)
        self._stdin: int | None = None

    async def run(self) -> Obj | None:
        """Stream until the container exits (a Status to send) or the client leaves (None)."""
        self._stdin = self._open_stdin()
        out = asyncio.ensure_future(self._outputs())
        client = asyncio.ensure_future(self._input())
        try:
            await asyncio.wait({out, client}, return_when=asyncio.FIRST_COMPLETED)
            return success() if out.done() and not client.done() else None
        finally:
            for task in (out, client):
                task.cancel()
            await asyncio.gather(out, client, return_exceptions=True)
            self._close_stdin()

    def _open_stdin(self) -> int | None:
        if not (self.opts.stdin and self.target.stdin_fifo):
            return None
        try:  # fails (ENXIO) when nobody reads it any more: the container is gone
            return os.open(self.target.stdin_fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None

    def _close_stdin(self) -> None:
        fd, self._stdin = self._stdin, None
        if fd is not None:
            os.close(fd)

    async def _outputs(self) -> None:
        tty = self.target.tty is not None and self.opts.tty
        wanted = [("stdout", STDOUT)] * self.opts.stdout + \
            [("stderr", STDOUT if tty else STDERR)] * (self.opts.stderr or tty)
        await asyncio.gather(*(self._output(s, c) for s, c in wanted))

    async def _output(self, stream: str, channel: int) -> None:
        async for text in self.files.follow(self.attempt, tail=0, finished=self.finished,
                                            stream=stream, raw=True):
            await self.sock.send(channel, text.encode())

    async def _input(self) -> None:
        async for message in self.sock.messages():
            if message.channel == STDIN and self._stdin is not None:
                try:
                    await fdio.write(self._stdin, message.data)
                except OSError:
                    self._close_stdin()  # the container stopped reading
            elif message.channel == RESIZE and self.target.tty is not None:
                self._resize(message.data)
            elif message.channel == CLOSE and message.data[:1] == bytes([STDIN]):
                self._close_stdin()
                if self.target.stdin_once:  # the client's stdin ended: so does the container's
                    self.end_stdin()

    def _resize(self, raw: bytes) -> None:
        assert self.target.tty is not None
        with contextlib.suppress(OSError):
            fd = os.open(self.target.tty, os.O_RDWR | os.O_NOCTTY)
            try:
                resize_terminal(fd, raw)
            finally:
                os.close(fd)
