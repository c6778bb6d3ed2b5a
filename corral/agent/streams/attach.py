"""``kubectl attach`` on the node: the running container's output from now on.

corral's containers are started with stdin on /dev/null (the shim keeps no
stdin open), so attach streams what the container writes — as Kubernetes does
for a container without ``stdin: true`` — read from the instance's log as it
grows (stdout on channel 1, stderr on 2, as asked); stdin sent by the client is
read and dropped. The stream ends with a
Success Status when the container exits, or when the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from corral.agent.runtime.logs import LogFiles
from corral.agent.streams.channels import STDERR, STDOUT, ChannelSocket, success
from corral.objects import Obj


async def attach_output(sock: ChannelSocket, files: LogFiles, attempt: int,
                        finished: Callable[[], bool], stdout: bool = True,
                        stderr: bool = True, tty: bool = False) -> Obj | None:
    """Stream until the container exits (a Status to send) or the client leaves (None)."""

    async def output(stream: str, channel: int) -> None:
        async for line in files.follow(attempt, tail=0, finished=finished, stream=stream):
            await sock.send(channel, f"{line}\n".encode())

    async def drain_input() -> None:
        async for _ in sock.messages():
            pass

    async def outputs() -> None:
        # A terminal has one output: stderr goes where stdout goes, as with a pty.
        wanted = [("stdout", STDOUT)] * stdout + [("stderr", STDOUT if tty else STDERR)] * (
            stderr or tty)
        await asyncio.gather(*(output(s, c) for s, c in wanted))

    out = asyncio.ensure_future(outputs())
    client = asyncio.ensure_future(drain_input())
    try:
        await asyncio.wait({out, client}, return_when=asyncio.FIRST_COMPLETED)
        return success() if out.done() and not client.done() else None
    finally:
        for task in (out, client):
            task.cancel()
        await asyncio.gather(out, client, return_exceptions=True)
