"""A bounded attack on one master, run as its own process (so the client measuring
normal requests does not share an interpreter with it):

    writers     N concurrent connections creating ConfigMaps as fast as they are
                answered (honouring Retry-After on 429)
    idle        M TLS connections that never send a request, reopened (at most
                100/s) whenever the server closes them
    slowloris   one connection sending its headers a byte every half second

    python -m bench.attack --url URL --token T --ca CA --namespace NS \\
        --seconds 60 --writers 200 --idle 2000 --out stats.json

Every loop is bounded by --seconds; traffic goes only to --url (loopback).
Writes a JSON summary: status counts, the names acknowledged with 201, how many
idle connections were open at most, and when the slowloris connection was closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import Connection


class Attack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deadline = time.monotonic() + args.seconds
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.acknowledged: list[str] = []
        self.idle_open = 0
        self.idle_max = 0
        self.slowloris_closed_after: float | None = None
        parts = urlsplit(args.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 443
        self.ctx = ssl.create_default_context(cafile=args.ca)

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def writer(self, index: int) -> None:
        path = f"/api/v1/namespaces/{self.args.namespace}/configmaps"
        conn: Connection | None = None
        sent = 0
        while self.running():
            try:
                if conn is None:
                    conn = await Connection.open(self.args.url, self.args.token, self.args.ca)
                name = f"w{index}-{sent}"
                body = orjson.dumps({"metadata": {"name": name}, "data": {"k": "v" * 64}})
                status, _ = await conn.request("POST", path, body)
                sent += 1
            except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                self.errors[type(err).__name__] += 1
                if conn is not None:
                    conn.close()
                conn = None
                await asyncio.sleep(0.1)
                continue
            self.statuses[status] += 1
            if status == 201:
                self.acknowledged.append(name)
            elif status == 429:
                await asyncio.sleep(1.0)  # the Retry-After the server sends
        if conn is not None:
            conn.close()

    async def idle(self) -> None:
        """Hold ``--idle`` TLS connections open; reopen the ones the server closes."""
        held: list[asyncio.StreamWriter] = []
        while self.running():
            held = [w for w in held if not w.is_closing() and not _eof(w)]
            self.idle_open = len(held)
            self.idle_max = max(self.idle_max, self.idle_open)
            for _ in range(min(self.args.idle - len(held), 100)):
                try:
                    _, w = await asyncio.open_connection(self.host, self.port, ssl=self.ctx)
                except OSError as err:
                    self.errors[f"idle-{type(err).__name__}"] += 1
                    break
                held.append(w)
            await asyncio.sleep(1.0)
        for w in held:
            w.close()

    async def slowloris(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.ctx)
        started = time.monotonic()
        head = (f"GET /api/v1/namespaces HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {self.args.token}\r\nX-Slow: ").encode()
        writer.write(head)
        while self.running():
            try:
                writer.write(b"a")
                await writer.drain()
                data = await asyncio.wait_for(reader.read(1), 0.5)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data:  # closed by the server before the headers ended
                self.slowloris_closed_after = time.monotonic() - started
                break
        writer.close()

    async def run(self) -> dict[str, object]:
        tasks = [self.writer(i) for i in range(self.args.writers)]
        if self.args.idle:
            tasks.append(self.idle())
        if self.args.slowloris:
            tasks.append(self.slowloris())
        await asyncio.gather(*tasks)
        return {"statuses": {str(k): v for k, v in self.statuses.items()},
                "errors": dict(self.errors), "acknowledged": self.acknowledged,
                "idle_max_open": self.idle_max,
                "slowloris_closed_after": self.slowloris_closed_after}


def _eof(writer: asyncio.StreamWriter) -> bool:
    reader = getattr(writer, "_protocol", None)
    stream = getattr(reader, "_stream_reader", None)
    return bool(stream is not None and stream.at_eof())


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--namespace", default="soak")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--writers", type=int, default=200)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--slowloris", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    with contextlib.suppress(ValueError, OSError):
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    summary = await Attack(args).run()
    args.out.write_bytes(orjson.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
