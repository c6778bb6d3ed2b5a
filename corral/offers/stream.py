"""One subscription's event stream: the body of a SUBSCRIBE response.

The master sends events; each becomes a RecordIO record, and records go out
together, as one chunk of the response (httpserver.py's sink), written straight
to the socket: an UPDATE waits up to FLUSH_SECONDS for others (the states of many
tasks, streamed from several agents one by one, are one write for the master and
one read for the framework, which acknowledges them in one write); any other
event (OFFERS above all) goes at the end of the loop's turn, with whatever waits.
Records sent before the response is under way (SUBSCRIBED, pending updates) wait
for it.

A framework that stops reading is cut off rather than letting the master's
memory grow: MAX_BACKLOG bytes unsent (or MAX_QUEUED records before the response
started). It re-subscribes, and what it missed is re-sent (status updates until
acknowledged) or re-offered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from corral.objects import Obj
from corral.offers.httpserver import ChunkSink
from corral.offers.protocol import recordio

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000  # records held before the response started
MAX_BACKLOG = 16 * 1024 * 1024  # bytes the socket has not taken yet
# How long an UPDATE waits for others to share its write: a task's updates wait
# for their ACKNOWLEDGEs anyway and its resources are offered again on the state
# that ends it, not on its acknowledgement; against one write (and one wake-up of
# the framework) per update, many fewer. Offers (and the rest) go at the end of the
# loop's turn: a node's next offer is on the path of every task's launch.
FLUSH_SECONDS = 0.002
BATCHED = frozenset({"UPDATE", "HEARTBEAT"})


class Stream:
    def __init__(self, framework_id: str) -> None:
        self.id = str(uuid.uuid4())  # the Mesos-Stream-Id later calls must carry
        self.framework_id = framework_id
        self.closed = False
        self._records: list[bytes] = []
        self._sink: ChunkSink | None = None
        self._timer: asyncio.Handle | None = None  # a flush to come
        self._soon = False  # that flush is at the end of this turn
        self._ended = False

    def send(self, evt: Obj) -> None:
        if self.closed:
            return
        self._records.append(recordio(evt))
        if len(self._records) > MAX_QUEUED or (
                self._sink is not None and self._sink.backlog() > MAX_BACKLOG):
            log.warning("framework not reading its stream, closing it framework=%s",
                        self.framework_id)
            self._records.clear()
            self.close()
            return
        self._flush_soon(evt.get("type") in BATCHED)

    def close(self) -> None:
        """No more events: what was sent goes out, then the response ends."""
        if not self.closed:
            self.closed = True
            self._flush_soon(False)

    def attach(self, sink: ChunkSink) -> None:
        """The response is under way: records go to ``sink`` from now on."""
        self._sink = sink
        self._flush()

    def _flush_soon(self, batched: bool) -> None:
        """A flush in FLUSH_SECONDS (``batched``), else at the end of this turn;
        one already to come sooner stands."""
        if self._sink is None or self._soon or (self._timer is not None and batched):
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._soon = not batched
        self._timer = loop.call_later(FLUSH_SECONDS, self._flush) if batched else \
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._soon = None, False
        if self._sink is None or self._ended:
            return
        if self._records:
            data = b"".join(self._records)
            self._records.clear()
            self._sink.write(data)
        if self.closed:
            self._ended = True
            self._sink.end()
