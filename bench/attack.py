"""A bounded attack on one master, run as its own process (so the client measuring
normal requests does not share an interpreter with it):

    writers     N concurrent connections creating ConfigMaps as fast as they are
                answered (honouring Retry-After on 429)
    idle        M TCP connections that never start TLS, and --idle-tls ones
                that never send a request, reopened whenever the server closes them
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
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
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
        self.idle_max: dict[str, int] = {}
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

    async def idle(self, count: int, tls: bool) -> None:
        """Hold ``count`` connections open that never send a request (plain TCP:
        the server is left waiting for a TLS handshake; TLS: for headers), and
        reopen the ones the server closes."""
        held: list[asyncio.StreamWriter] = []
        key = "idle_tls" if tls else "idle_tcp"
        while self.running():
            held = [w for w in held if not w.is_closing() and not _eof(w)]
            self.idle_max[key] = max(self.idle_max.get(key, 0), len(held))
            wanted = min(count - len(held), 200)
            opened = await asyncio.gather(
                *(asyncio.open_connection(self.host, self.port, ssl=self.ctx if tls else None)
                  for _ in range(wanted)), return_exceptions=True)
            for item in opened:
                if isinstance(item, BaseException):
                    self.errors[f"{key}-{type(item).__name__}"] += 1
                else:
                    held.append(item[1])
            await asyncio.sleep(0.5)
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
            tasks.append(self.idle(self.args.idle, tls=False))
        if self.args.idle_tls:
            tasks.append(self.idle(self.args.idle_tls, tls=True))
        if self.args.slowloris:
            tasks.append(self.slowloris())
        await asyncio.gather(*tasks)
        return {"statuses": {str(k): v for k, v in self.statuses.items()},
                "errors": dict(self.errors), "acknowledged": self.acknowledged,
                "idle_max_open": self.idle_max,  # by kind: idle_tcp, idle_tls
                "slowloris_closed_after": self.slowloris_closed_after}


KUBECTL_AGENT = "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd"


@dataclass
class Soak:
    """What a client doing normal work saw while the attack ran."""

    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    started: list[float] = field(default_factory=list)  # when each began, from the first
    statuses: Counter[int] = field(default_factory=Counter)
    peak_rss: int = 0  # bytes, the master's
    attack: dict[str, object] = field(default_factory=dict)  # bench.attack's summary


def new_connection_seconds(url: str, ca: str) -> float:
    """Seconds for a new client, as kubectl is on each command, to connect, finish
    its TLS handshake and read the answer to GET /version (its 10 s handshake
    limit is what an attacker's queued connections used to exhaust)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 443
    ctx = ssl.create_default_context(cafile=ca)
    t0 = time.monotonic()
    with socket.create_connection((host, port), timeout=60) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET /version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                    .encode())
        assert tls.recv(12).startswith(b"HTTP/1.1 200")
    return time.monotonic() - t0


def rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def soak(url: str, token: str, ca: str, master_pid: int, seconds: float, *,
         writers: int = 200, idle: int = 2000, namespace: str = "soak",
         probe: str = "/api/v1/namespaces/default/configmaps?limit=50",
         every: Callable[[], None] | None = None) -> Soak:
    """Attack the master from another process for ``seconds`` while this one sends
    a normal request (as kubectl would) every 0.2 s and calls ``every`` once a
    second; the master's ``namespace`` must exist."""
    result = Soak()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "attack.json"
        proc = subprocess.Popen(
            # --token=...: a token may begin with "-"
            [sys.executable, "-m", "bench.attack", "--url", url, f"--token={token}", "--ca", ca,
             "--namespace", namespace, "--seconds", str(seconds), "--writers", str(writers),
             "--idle", str(idle), "--out", str(out)],
            cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
        try:
            _probe(result, url, token, ca, master_pid, proc, every, probe)
            proc.wait(seconds + 120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
        result.attack = orjson.loads(out.read_bytes()) if out.exists() else {}
    return result


def _probe(result: Soak, url: str, token: str, ca: str, pid: int,
           proc: subprocess.Popen[bytes], every: Callable[[], None] | None,
           probe: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "User-Agent": KUBECTL_AGENT}
    last_every = time.monotonic()
    time.sleep(2.0)  # let the attack get going
    with httpx.Client(base_url=url, verify=ca, headers=headers, timeout=60.0) as client:
        first = time.monotonic()
        while proc.poll() is None:
            t0 = time.monotonic()
            response = client.get(probe)
            result.latencies.append(time.monotonic() - t0)
            result.started.append(t0 - first)
            result.statuses[response.status_code] += 1
            result.peak_rss = max(result.peak_rss, rss_of(pid))
            if every is not None and time.monotonic() - last_every >= 1.0:
                every()
                last_every = time.monotonic()
            time.sleep(0.2)


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
    ap.add_argument("--idle-tls", type=int, default=200)
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
