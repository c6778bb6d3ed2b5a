"""The Mesos master's direct line to this node's framework tasks (the agent's side;
corral/offers/agentlink.py is the master's).

    GET  /frameworkTasks                      JSON lines, chunked, open for good:
         {"node": n}                          first: the stream is live
         {"alloc": "ns/name", "uid", "framework", "task": {id, state, seq, ...}}
                                              every framework task's state on the
                                              node now, then each new one as it comes
    POST /frameworkTasks/{ns}/{alloc}         {"uid", "tasks": [spec.tasks entries],
                                               "kills": {task id: grace or null}}
         ─► the Alloc's worker hands them to its running executor at once
            200 {"launched": [ids]}   404 the agent has no such Alloc (yet)
            409 another Alloc of that name, or it is going   400 a malformed body

Both answer the master only (the agent server's guard: the master's client
certificate). A state goes out here when it happens and into the Alloc's
``status.tasks`` with the next status write (batched): the store stays the
truth a restarted agent or a new master rebuilds from, and ``seq`` tells the
master which of the two is newer. A master that stops reading is dropped (its
queue full) and gets the whole picture again when it reconnects.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable

import orjson

from corral.objects import Obj

QUEUE_LINES = 20000  # states a reader may fall behind by before it is dropped
PACE_SECONDS = 0.004  # the least time between two chunks of a reader's


class TaskFeed:
    def __init__(self, node: str) -> None:
        self.node = node
        self._readers: set[asyncio.Queue[bytes | None]] = set()

    def watched(self) -> bool:
        """Whether a master reads the feed (then status writes may come less often)."""
        return bool(self._readers)

    def publish(self, alloc: str, uid: str, framework: str, entry: Obj) -> None:
        if not self._readers:
            return
        line = _line(alloc, uid, framework, entry)
        for queue in list(self._readers):
            try:
                queue.put_nowait(line)
            except asyncio.QueueFull:  # a slow reader: it reconnects and starts afresh
                self._readers.discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)

    async def stream(self, snapshot: Callable[[], list[tuple[str, str, str, Obj]]]
                     ) -> AsyncGenerator[bytes, None]:
        """The live line first, then every state now, then each new one."""
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LINES)
        self._readers.add(queue)  # before the snapshot: nothing falls in between
        try:
            yield json.dumps({"node": self.node}).encode() + b"\n"
            lines = [_line(*item) for item in snapshot()]
            if lines:
                yield b"".join(lines)
            loop, sent = asyncio.get_running_loop(), float("-inf")
            while True:
                line = await queue.get()
                if line is None:
                    return
                # Chunks at most every PACE_SECONDS: a state that comes after a
                # quiet spell goes at once, those of a burst share a chunk (each is a
                # TLS record and a send here, a read and a parse at the master).
                wait = sent + PACE_SECONDS - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                batch = [line]
                while not queue.empty():  # what piled up goes in one chunk
                    more = queue.get_nowait()
                    if more is None:
                        yield b"".join(batch)
                        return
                    batch.append(more)
                yield b"".join(batch)
                sent = loop.time()
        finally:
            self._readers.discard(queue)


def _line(alloc: str, uid: str, framework: str, entry: Obj) -> bytes:
    return orjson.dumps({"alloc": alloc, "uid": uid, "framework": framework,
                         "task": entry}) + b"\n"
