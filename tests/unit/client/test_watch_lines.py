"""A watch stream's events however its bytes come: several in one chunk, one
over several chunks (a large object over TCP), blank lines, a last line without
its newline; a malformed line is a BadRequest, not a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from corral.api.errors import BadRequest, Gone
from corral.client.watch import WatchEvent, stream_events


class Chunks:
    """A StreamOpener whose response body comes in the given chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def open_stream(self, path: str, params: dict[str, Any], read_timeout: float | None,
                          headers: dict[str, str] | None = None) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                yield chunk
        return httpx.Response(200, content=body())


def line(event_type: str, name: str, size: int = 0) -> bytes:
    obj = {"metadata": {"name": name, "resourceVersion": "7"}, "data": {"x": "é" * size}}
    return orjson.dumps({"type": event_type, "object": obj}) + b"\n"


async def events(chunks: list[bytes]) -> list[WatchEvent]:
    return [e async for e in stream_events(Chunks(chunks), "/w", {}, None, OSError)]


async def test_events_however_the_bytes_are_cut() -> None:
    big = line("MODIFIED", "big", size=40_000)
    stream = line("ADDED", "a") + b"\n" + line("MODIFIED", "b") + big + line("DELETED", "c")
    expected = [("ADDED", "a"), ("MODIFIED", "b"), ("MODIFIED", "big"), ("DELETED", "c")]
    for cut in (1, 7, 100, 4096, len(stream)):
        chunks = [stream[i:i + cut] for i in range(0, len(stream), cut)]
        got = await events(chunks)
        assert [(e.type, e.object["metadata"]["name"]) for e in got] == expected, cut
        assert got[2].object["data"]["x"] == "é" * 40_000
    last = await events([line("ADDED", "a"), line("ADDED", "z").rstrip(b"\n")])
    assert [e.object["metadata"]["name"] for e in last] == ["a", "z"]


async def test_bad_lines_and_error_events() -> None:
    with pytest.raises(BadRequest, match="malformed watch event"):
        await events([b"{not json\n"])
    with pytest.raises(BadRequest, match="malformed watch event"):
        await events([b"[1, 2]\n"])
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                        "message": "too old resource version: 1 (5)"}}
    with pytest.raises(Gone):
        await events([line("ADDED", "a"), orjson.dumps(gone) + b"\n"])
