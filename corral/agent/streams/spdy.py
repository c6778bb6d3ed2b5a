"""SPDY/3.1 frames, as much of them as Kubernetes' port-forward uses.

kubectl (1.31+) tunnels SPDY/3.1 through a websocket (subprotocol
``SPDY/3.1+portforward.k8s.io``): the binary messages carry a plain byte stream
of SPDY frames, with no relation between message and frame boundaries. Its SPDY
side is moby/spdystream, which keeps no flow control (WINDOW_UPDATE is neither
sent nor honoured), so neither do we.

    control frame   1 | version (15) = 3 | type (16) | flags (8) | length (24) | payload
    data frame      0 | stream id (31)              | flags (8) | length (24) | payload

    SYN_STREAM  stream id (31), associated id (31), priority (3) + unused (5),
                slot (8), header block
    SYN_REPLY   stream id (31), header block
    RST_STREAM  stream id (31), status (32)
    PING        id (32)                  — echoed back by the peer that did not send it
    GOAWAY      last good stream id (31), status (32)
    HEADERS     stream id (31), header block
    SETTINGS, WINDOW_UPDATE              — read and ignored

A header block is ``count (32)`` then ``len (32) name len (32) value`` per pair,
names lower case, compressed by zlib with SPDY/3's fixed dictionary; each
direction keeps one compression context for the whole session (so frames must
be encoded in the order they are sent). The pure codec here does no I/O.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

VERSION = 3
FLAG_FIN = 0x01
MAX_DATA = 0xFFFFFF  # a frame's 24-bit length


class Kind(IntEnum):
    """A frame's type; DATA is not a control frame (no type on the wire)."""

    DATA = 0
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    CANCEL = 5
    INTERNAL_ERROR = 6


# The SPDY/3 header dictionary: these names, each with a 4-byte length, then
# the text below (byte for byte the one in the SPDY/3 draft; a test pins its hash).
_DICTIONARY_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range",
    "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
    "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status",
    "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
)
_DICTIONARY_TEXT = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


def _dictionary() -> bytes:
    words = [w.encode() for w in _DICTIONARY_WORDS]
    return b"".join(struct.pack(">I", len(w)) + w for w in words) + _DICTIONARY_TEXT.encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3: the session cannot go on."""


@dataclass
class Frame:
    kind: Kind
    stream_id: int = 0
    flags: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    value: int = 0  # PING id, RST_STREAM/GOAWAY status, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def _header_block(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def _parse_header_block(raw: bytes) -> dict[str, str]:
    try:
        (count,), pos, headers = struct.unpack_from(">I", raw), 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", raw, pos)
            name = raw[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            (v,) = struct.unpack_from(">I", raw, pos)
            headers[name] = raw[pos + 4:pos + 4 + v].decode()
            pos += 4 + v
    except (struct.error, UnicodeDecodeError) as err:
        raise ProtocolError(f"malformed header block: {err}") from err
    return headers


class Codec:
    """One side of a session: ``feed`` bytes in, frames out; ``encode`` frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15,
                                         zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    # -- reading -------------------------------------------------------------

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frame = self._decode(head, payload)
            if frame is not None:
                frames.append(frame)
        return frames

    def _decode(self, head: bytes, payload: bytes) -> Frame | None:
        flags = head[4]
        if not head[0] & 0x80:
            stream_id = int.from_bytes(head[:4], "big") & 0x7FFFFFFF
            return Frame(Kind.DATA, stream_id, flags, data=payload)
        version, kind = struct.unpack(">HH", head[:4])
        if version & 0x7FFF != VERSION:
            raise ProtocolError(f"SPDY version {version & 0x7FFF} is not 3")
        try:
            return self._control(Kind(kind), flags, payload)
        except ValueError:
            return None  # an unknown control frame: SPDY says ignore it
        except struct.error as err:
            raise ProtocolError(f"short {Kind(kind).name} frame") from err

    def _control(self, kind: Kind, flags: int, p: bytes) -> Frame:
        if kind is Kind.PING:
            return Frame(kind, flags=flags, value=struct.unpack_from(">I", p)[0])
        if kind is Kind.SETTINGS:
            return Frame(kind, flags=flags)
        stream_id = struct.unpack_from(">I", p)[0] & 0x7FFFFFFF
        if kind in (Kind.RST_STREAM, Kind.GOAWAY, Kind.WINDOW_UPDATE):
            value = struct.unpack_from(">I", p, 4)[0] if len(p) >= 8 else 0
            return Frame(kind, stream_id, flags, value=value)
        block = p[10:] if kind is Kind.SYN_STREAM else p[4:]
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as err:
            raise ProtocolError(f"cannot inflate a header block: {err}") from err
        return Frame(kind, stream_id, flags, headers=_parse_header_block(raw))

    # -- writing -------------------------------------------------------------

    def _compress(self, headers: dict[str, str]) -> bytes:
        block = _header_block(headers)
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control_frame(kind: Kind, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        payload = struct.pack(">IIH", stream_id, 0, 0) + self._compress(headers)
        return self._control_frame(Kind.SYN_STREAM, FLAG_FIN if fin else 0, payload)

    def syn_reply(self, stream_id: int, fin: bool = False) -> bytes:
        payload = struct.pack(">I", stream_id) + self._compress({})
        return self._control_frame(Kind.SYN_REPLY, FLAG_FIN if fin else 0, payload)

    def rst_stream(self, stream_id: int, status: RstStatus) -> bytes:
        return self._control_frame(Kind.RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control_frame(Kind.PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control_frame(Kind.GOAWAY, 0, struct.pack(">II", last_stream_id, status))

    @staticmethod
    def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        """One or more DATA frames (payloads over 16 MiB are split)."""
        out, views = [], [payload[i:i + MAX_DATA] for i in range(0, len(payload), MAX_DATA)]
        views = views or [b""]
        for i, chunk in enumerate(views):
            flags = FLAG_FIN if fin and i == len(views) - 1 else 0
            out.append(struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(chunk)))
            out.append(chunk)
        return b"".join(out)
