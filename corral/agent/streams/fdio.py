"""Non-blocking reads and writes on raw file descriptors (pipes, a pty's master)
from asyncio, ending cleanly at EOF — a pty's master reads EIO once the last
slave is closed, which is its EOF."""

from __future__ import annotations

import asyncio
import errno
import os

CHUNK = 64 * 1024


async def _ready(fd: int, write: bool) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    try:
        await fut
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def read(fd: int) -> bytes:
    """The next chunk, or b"" at EOF."""
    while True:
        try:
            return os.read(fd, CHUNK)
        except BlockingIOError:
            await _ready(fd, write=False)
        except OSError as err:
            if err.errno == errno.EIO:
                return b""
            raise


async def write(fd: int, data: bytes) -> None:
    """All of ``data``; raises OSError (EPIPE) when the reader is gone."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await _ready(fd, write=True)
