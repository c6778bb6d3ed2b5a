"""The SPDY/3.1 codec port-forward speaks: frames round-trip, headers share one
zlib context per direction, and bytes split anywhere still parse."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from corral.agent.streams.spdy import DICTIONARY, Codec, Kind, ProtocolError, RstStatus


def test_dictionary_is_spdy3s() -> None:
    # The hash of the 1423 bytes of the SPDY/3 draft's dictionary (as spdystream has it).
    assert len(DICTIONARY) == 1423
    assert hashlib.sha256(DICTIONARY).hexdigest() == \
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


def test_frames_round_trip_split_at_every_byte() -> None:
    client, server = Codec(), Codec()
    wire = b"".join([
        client.syn_stream(1, {"streamType": "error", "port": "8080", "requestID": "0"}),
        client.syn_stream(3, {"streamType": "data", "port": "8080", "requestID": "0"}),
        Codec.data(3, b"GET / HTTP/1.1\r\n\r\n", fin=True),
        client.ping(7), client.rst_stream(3, RstStatus.CANCEL), client.goaway(3),
    ])
    frames = [f for i in range(len(wire)) for f in server.feed(wire[i:i + 1])]
    assert [f.kind for f in frames] == [Kind.SYN_STREAM, Kind.SYN_STREAM, Kind.DATA,
                                        Kind.PING, Kind.RST_STREAM, Kind.GOAWAY]
    # Names arrive lower case, as the wire format requires; the second block was
    # compressed against the first (one context), and still decodes.
    assert frames[1].headers == {"streamtype": "data", "port": "8080", "requestid": "0"}
    assert (frames[2].stream_id, frames[2].data, frames[2].fin) == (3, b"GET / HTTP/1.1\r\n\r\n",
                                                                    True)
    assert (frames[3].value, frames[4].value, frames[5].stream_id) == (7, RstStatus.CANCEL, 3)


def test_reply_is_readable_by_a_fresh_peer() -> None:
    server, client = Codec(), Codec()
    (reply,) = client.feed(server.syn_reply(5))
    assert (reply.kind, reply.stream_id, reply.headers, reply.fin) == (Kind.SYN_REPLY, 5, {},
                                                                       False)


def test_settings_window_updates_and_unknown_frames_are_skipped() -> None:
    settings = struct.pack(">HHI", 0x8003, 4, 12) + struct.pack(">III", 1, 0x07000000, 65536)
    window = struct.pack(">HHI", 0x8003, 9, 8) + struct.pack(">II", 1, 1000)
    unknown = struct.pack(">HHI", 0x8003, 0x77, 0)
    frames = Codec().feed(settings + window + unknown + Codec.data(1, b"x"))
    assert [f.kind for f in frames] == [Kind.SETTINGS, Kind.WINDOW_UPDATE, Kind.DATA]


def test_bad_input_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="version 2"):
        Codec().feed(struct.pack(">HHI", 0x8002, 6, 4) + b"\0\0\0\1")
    garbage = struct.pack(">IIH", 1, 0, 0) + b"not zlib at all"
    with pytest.raises(ProtocolError, match="inflate"):
        Codec().feed(struct.pack(">HHI", 0x8003, 1, len(garbage)) + garbage)
    # a header block whose count promises more pairs than it holds
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, zdict=DICTIONARY)
    block = deflate.compress(struct.pack(">I", 3)) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">I", 1) + block
    with pytest.raises(ProtocolError, match="header block"):
        Codec().feed(struct.pack(">HHI", 0x8003, 2, len(payload)) + payload)
