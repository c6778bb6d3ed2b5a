"""One subscription's event stream: the body of a SUBSCRIBE response.

The master puts events in; the HTTP response takes RecordIO records out as
chunks. A framework that stops reading (its queue past ``MAX_QUEUED``) is cut
off rather than letting the master's memory grow: it re-subscribes, and what
it missed is re-sent (status updates until acknowledged) or re-offered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

from corral.objects import Obj
from corral.offers.protocol import recordio

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000  # events waiting for a framework that does not read


class Stream:
    def __init__(self, framework_id: str) -> None:
        self.id = str(uuid.uuid4())  # the Mesos-Stream-Id later calls must carry
        self.framework_id = framework_id
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False

    def send(self, evt: Obj) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            log.warning("framework not reading its stream, closing it framework=%s",
                        self.framework_id)
            self.close()
            return
        self._queue.put_nowait(recordio(evt))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)

    async def records(self) -> AsyncIterator[bytes]:
        """The records as they come, until the stream is closed."""
        while True:
            record = await self._queue.get()
            if record is None:
                return
            yield record
