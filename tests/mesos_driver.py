"""A lean Mesos v1 scheduler client: what a production framework does on the wire,
in one thread and two sockets, for framework processes that must not cost more
than the master they talk to (tests/offers_framework.py, bench/offers.py).

    driver = Driver(url, framework_info)
    driver.subscribe()                        # POST SUBSCRIBE: 200, Mesos-Stream-Id,
                                              # the SUBSCRIBED event (SubscribeError)
    while not driver.ended:
        events, answers = driver.poll(1.0)    # events read, answers to earlier calls
        driver.call("ACKNOWLEDGE", acknowledge={...}, tag=...)
                                              # queued: sent with the next poll

    stream    the SUBSCRIBE connection: a chunked RecordIO body ("<length>\\n<json>"),
              de-chunked by httptools (llhttp, C), records split here, orjson
    calls     keep-alive connections with the Mesos-Stream-Id (ACKNOWLEDGEs spread
              over ACK_LANES of them, every other call on one), HTTP/1.1 pipelined: the calls made while handling one read (a batch
              of UPDATEs' ACKNOWLEDGEs) go out in one write, without waiting for the
              answers before; those come back in order and are matched to the call
              (its kind, when it was sent, the caller's tag). A connection that
              closes answers its unanswered calls with code 0 (the caller decides;
              the master re-sends an unacknowledged update anyway)

It authenticates as the URL says (``http://PRINCIPAL:SECRET@host:port``: HTTP
Basic), as tests/mesos_client.py does. That client, on httpx with a thread for the
stream, stays the one tests use to look at single calls and answers.
"""

from __future__ import annotations

import base64
import selectors
import shlex
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httptools
import orjson

Obj = dict[str, Any]
READ_BYTES = 1 << 18
# Connections for ACKNOWLEDGEs. The master answers one connection's calls one after
# the other; with a task's next update held until its last one is acknowledged
# (three a task), a single connection made the ACKs queue (median ACCEPT sent →
# RUNNING 2.6 s under load, against 0.6 s with the earlier client's 8 threads).
ACK_LANES = 4


class SubscribeError(Exception):
    """SUBSCRIBE was not answered 200 (or the connection failed): ``code`` 0 when no
    answer came. Retrying helps when the master was not (yet) leading."""

    def __init__(self, code: int, body: bytes) -> None:
        super().__init__(f"SUBSCRIBE answered {code}: {body[:500]!r}")
        self.code = code
        self.body = body


@dataclass(slots=True)
class Answer:
    kind: str  # the call's type
    code: int  # HTTP status; 0: the connection ended before the answer
    body: bytes
    sent: float  # time.monotonic() when it was queued
    tag: Any


def task_info(task_id: str, agent_id: str, command: str, cpus: float = 0.1,
              mem: float = 32.0, *, shell: bool = True) -> Obj:
    """A TaskInfo running ``command`` with that much: through the shell, or (``shell``
    false) as the words of an argv, the first the program."""
    info: Obj = {"value": command, "shell": True}
    if not shell:
        argv = shlex.split(command)
        info = {"value": argv[0], "arguments": argv, "shell": False}
    return {"name": task_id, "task_id": {"value": task_id}, "agent_id": {"value": agent_id},
            "command": info,
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}]}


def launch(*tasks: Obj) -> Obj:
    """An Offer.Operation launching ``tasks``."""
    return {"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}


class RecordIO:
    """Mesos' RecordIO framing: ``<length>\\n<json>`` records out of a byte stream."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Obj]:
        buf = self._buf
        buf += data
        out, pos = [], 0
        while (nl := buf.find(b"\n", pos)) >= 0:
            end = nl + 1 + int(buf[pos:nl])
            if end > len(buf):
                break
            out.append(orjson.loads(buf[nl + 1:end]))
            pos = end
        del buf[:pos]
        return out


class _Response:
    """httptools' callbacks for one connection's answers, in order."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.complete: list[tuple[int, bytes]] = []  # (code, body) of finished answers
        self.headers_done = False
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self.body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete.append((self.parser.get_status_code(), bytes(self.body)))


class _Stream(_Response):
    """The SUBSCRIBE answer: its body's records as they come (no body kept)."""

    def __init__(self) -> None:
        super().__init__()
        self.records = RecordIO()
        self.events: list[Obj] = []
        self.ended = False

    def on_body(self, body: bytes) -> None:
        if self.parser.get_status_code() != 200:
            self.body += body
        else:
            self.events += self.records.feed(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.ended = True


class _Lane:
    """One keep-alive connection for calls, pipelined: requests written without
    waiting, answers matched to them in order."""

    def __init__(self, address: tuple[str, int], timeout: float,
                 selector: selectors.BaseSelector) -> None:
        self.address = address
        self.timeout = timeout
        self.selector = selector
        self.sock: socket.socket | None = None
        self.answers = _Response()
        self.pending: deque[tuple[str, float, Any]] = deque()  # sent, not answered
        self.out = bytearray()  # written into, not yet taken by the socket

    def busy(self) -> bool:
        return bool(self.pending or self.out)

    def queue(self, kind: str, request: bytes, tag: Any) -> None:
        self.out += request
        self.pending.append((kind, time.monotonic(), tag))

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(self.address, self.timeout)
        except OSError:
            return None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock, self.answers = sock, _Response()
        self.selector.register(sock, selectors.EVENT_READ, self)
        return sock

    def close(self) -> list[Answer]:
        """The connection gone: its unanswered calls answered with code 0."""
        if self.sock is not None:
            self.selector.unregister(self.sock)
            self.sock.close()
            self.sock = None
        lost = [Answer(kind, 0, b"", sent, tag) for kind, sent, tag in self.pending]
        self.pending.clear()
        self.out.clear()
        return lost

    def send(self) -> list[Answer]:
        sock = self.sock or self._connect()
        if sock is None:
            return self.close()
        try:
            sent = sock.send(self.out)
        except BlockingIOError:
            sent = 0
        except OSError:
            return self.close()
        del self.out[:sent]
        self.selector.modify(sock, selectors.EVENT_READ | (
            selectors.EVENT_WRITE if self.out else 0), self)
        return []

    def read(self) -> list[Answer]:
        assert self.sock is not None
        try:
            data = self.sock.recv(READ_BYTES)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        parsed = self.answers
        try:
            if data:
                parsed.parser.feed_data(data)
        except httptools.HttpParserError:
            data = b""
        answers = []
        for code, body in parsed.complete:
            kind, sent, tag = self.pending.popleft()
            answers.append(Answer(kind, code, body, sent, tag))
        parsed.complete.clear()
        if not data:
            answers += self.close()
        return answers


class Driver:
    def __init__(self, url: str, info: Obj, *, timeout: float = 30.0,
                 ack_lanes: int = ACK_LANES) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 5050)
        self.timeout = timeout
        self.info = info
        self.id = ""
        self.stream_id = ""
        head = f"POST /api/v1/scheduler HTTP/1.1\r\nHost: {parts.netloc.rpartition('@')[2]}\r\n"
        if parts.username is not None:
            basic = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            head += f"Authorization: Basic {base64.b64encode(basic.encode()).decode()}\r\n"
        self._head = head + "Content-Type: application/json\r\nAccept: application/json\r\n"
        self._prefix = b""  # every call's request line and headers, up to Content-Length
        self._stream: socket.socket | None = None
        self._stream_answer = _Stream()
        self._selector = selectors.DefaultSelector()
        self._calls = _Lane(self.address, timeout, self._selector)
        self._acks = tuple(_Lane(self.address, timeout, self._selector)
                           for _ in range(ack_lanes))
        self._lanes = (self._calls, *self._acks)
        self.ended = True  # no stream yet

    # -- the stream --------------------------------------------------------------

    def subscribe(self) -> Obj:
        """SUBSCRIBE (with the framework's id once it has one), blocking until the
        SUBSCRIBED event; returns it. SubscribeError: not 200, or no answer."""
        self._close_stream()
        for lane in self._lanes:  # the new stream's id on new connections
            lane.close()
        info = dict(self.info)
        body: Obj = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if self.id:
            info["id"] = body["framework_id"] = {"value": self.id}
        try:
            sock = socket.create_connection(self.address, self.timeout)
        except OSError as err:
            raise SubscribeError(0, str(err).encode()) from err
        self._stream, self._stream_answer, self.ended = sock, _Stream(), False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            data = orjson.dumps(body)
            sock.sendall(b"%sContent-Length: %d\r\n\r\n%s" % (self._head.encode(), len(data),
                                                              data))
            subscribed = self._first_event(sock)
        except (OSError, httptools.HttpParserError) as err:
            self._close_stream()
            raise SubscribeError(0, str(err).encode()) from err
        self.id = subscribed["subscribed"]["framework_id"]["value"]
        self.stream_id = self._stream_answer.headers["mesos-stream-id"]
        self._prefix = (f"{self._head}Mesos-Stream-Id: {self.stream_id}\r\n").encode()
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, "stream")
        return subscribed

    def _first_event(self, sock: socket.socket) -> Obj:
        answer = self._stream_answer
        while not answer.events:
            data = sock.recv(READ_BYTES)
            if data:
                answer.parser.feed_data(data)
            if answer.complete or not data:
                code = answer.parser.get_status_code() if answer.headers_done else 0
                self._close_stream()
                raise SubscribeError(code, bytes(answer.body))
        event = answer.events.pop(0)
        if event.get("type") != "SUBSCRIBED":
            self._close_stream()
            raise SubscribeError(200, orjson.dumps(event))
        return event

    def _close_stream(self) -> None:
        if self._stream is not None:
            try:
                self._selector.unregister(self._stream)
            except KeyError:
                pass  # the SUBSCRIBE never got its answer: not registered yet
            self._stream.close()
            self._stream = None
        self.ended = True

    # -- calls -------------------------------------------------------------------

    def call(self, kind: str, tag: Any = None, **fields: Any) -> None:
        """Queue a call (``fields`` beside type and framework_id); its Answer comes
        from a later poll, with ``tag``. ACKNOWLEDGEs go on connections of their
        own: the master answers one connection's calls in order, and an ACCEPT
        must not wait behind a burst of them."""
        body = orjson.dumps({"type": kind, "framework_id": {"value": self.id}, **fields})
        lane = self._calls
        if kind == "ACKNOWLEDGE":  # the least loaded of the ACK connections
            lane = min(self._acks, key=lambda a: len(a.pending))
        lane.queue(kind, b"%sContent-Length: %d\r\n\r\n%s" % (self._prefix, len(body), body),
                   tag)

    # -- the loop ------------------------------------------------------------------

    def poll(self, timeout: float) -> tuple[list[Obj], list[Answer]]:
        """Send what is queued, then wait up to ``timeout`` for events or answers."""
        answers: list[Answer] = []
        for lane in self._lanes:
            if lane.out:
                answers += lane.send()
        events = self._take_events()
        if events or answers:
            timeout = 0.0  # hand these over first; read again at once
        for key, mask in self._selector.select(timeout):
            if key.data == "stream":
                events += self._read_stream()
                continue
            lane = key.data
            if mask & selectors.EVENT_READ:
                answers += lane.read()
            if mask & selectors.EVENT_WRITE and lane.out:
                answers += lane.send()
        return events, answers

    def _take_events(self) -> list[Obj]:
        events, self._stream_answer.events = self._stream_answer.events, []
        return events

    def _read_stream(self) -> list[Obj]:
        assert self._stream is not None
        try:
            data = self._stream.recv(READ_BYTES)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        answer = self._stream_answer
        try:
            if data:
                answer.parser.feed_data(data)
        except httptools.HttpParserError:
            data = b""
        events = self._take_events()
        if not data or answer.ended:
            self._close_stream()
        return events

    def drain(self, timeout: float) -> list[Answer]:
        """Every queued call sent and answered (or ``timeout`` passed): their answers;
        events read meanwhile are kept for the next poll."""
        deadline = time.monotonic() + timeout
        answers: list[Answer] = []
        held: list[Obj] = []
        while any(lane.busy() for lane in self._lanes) and time.monotonic() < deadline:
            events, more = self.poll(max(0.0, deadline - time.monotonic()))
            held += events
            answers += more
        self._stream_answer.events[:0] = held
        return answers

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()
        self._close_stream()
        self._selector.close()
