"""``kubectl attach`` on the node: the running container's output from now on.

corral's containers are started with stdin on /dev/null (the shim keeps no
stdin open), so attach streams what the container writes — as Kubernetes does
for a container without ``stdin: true`` — read from the instance's log as it
grows; stdin sent by the client is read and dropped. The stream ends with a
Success Status when the container exits, or when the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from corral.agent.runtime.logs import LogFiles
from corral.agent.streams.channels import STDOUT, ChannelSocket, success
from corral.objects import Obj


async def attach_output(sock: ChannelSocket, files: LogFiles, attempt: int,
                        finished: Callable[[], bool]) -> Obj | None:
    """Stream until the container exits (a Status to send) or the client leaves (None)."""

    async def output() -> None:
        async for line in files.follow(attempt, tail=0, finished=finished):
            await sock.send(STDOUT, f"{line}\n".encode())

    async def drain_input() -> None:
        async for _ in sock.messages():
            pass

    out, client = asyncio.create_task(output()), asyncio.create_task(drain_input())
    try:
        await asyncio.wait({out, client}, return_when=asyncio.FIRST_COMPLETED)
        return success() if out.done() and not client.done() else None
    finally:
        for task in (out, client):
            task.cancel()
        await asyncio.gather(out, client, return_exceptions=True)
