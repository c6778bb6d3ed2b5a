"""`corral front --listen HOST:PORT --backend HOST:PORT ...`: the one address kubectl
gets when `corral up --masters N` runs several masters.

A TCP pass-through (TLS goes end to end: the masters share one serving
certificate), the small load balancer one puts in front of kube-apiservers:

    kubectl ──▶ front ──▶ the next master that answered /readyz last time
                          (round robin among them; a refused connect tries the
                          next one at once, so a dead master costs no error)

Every PROBE_INTERVAL each master's /readyz is asked (with a short timeout): a
master that is stopped (SIGSTOP) still accepts TCP connections in the kernel,
only a real request tells it is not answering.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal

import httpx

from corral.aiotasks import cancel_and_wait
from corral.cli import eventloop
from corral.cli.logging_setup import setup_logging
from corral.cli.master import parse_listen

log = logging.getLogger("corral.front")

PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 1.0
CONNECT_TIMEOUT = 2.0
CHUNK = 65536

Backend = tuple[str, int]


class Front:
    def __init__(self, backends: list[Backend], scheme: str) -> None:
        self.backends = backends
        self.scheme = scheme
        self.ready = {b: True for b in backends}  # optimistic until the first probe
        self._turn = itertools.count()

    def order(self) -> list[Backend]:
        """Ready backends first, rotated each call (round robin), then the rest."""
        start = next(self._turn) % len(self.backends)
        rotated = self.backends[start:] + self.backends[:start]
        return sorted(rotated, key=lambda b: not self.ready[b])

    async def probe_forever(self) -> None:
        async with httpx.AsyncClient(verify=False, timeout=PROBE_TIMEOUT) as http:
            while True:
                await asyncio.gather(*(self._probe(http, b) for b in self.backends))
                await asyncio.sleep(PROBE_INTERVAL)

    async def _probe(self, http: httpx.AsyncClient, backend: Backend) -> None:
        host, port = backend
        try:
            ok = (await http.get(f"{self.scheme}://{host}:{port}/readyz")).status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok != self.ready[backend]:
            log.info("master %s backend=%s:%d", "ready" if ok else "not ready", host, port)
        self.ready[backend] = ok

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await self._connect()
            if upstream is None:
                log.warning("no master reachable; connection closed")
                return
            up_reader, up_writer = upstream
            pipes = {asyncio.create_task(_pipe(reader, up_writer)),
                     asyncio.create_task(_pipe(up_reader, writer))}
            try:
                # A half-close is passed on (write_eof); the connection ends when
                # both directions have, or one of them broke.
                _, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
            finally:
                up_writer.close()
        finally:
            writer.close()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for backend in self.order():
            try:
                return await asyncio.wait_for(asyncio.open_connection(*backend),
                                              CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                self.ready[backend] = False
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF (passed on as a half-close); a broken side raises, which
    ends the connection both ways."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def run_front(listen: Backend, backends: list[Backend], scheme: str) -> None:
    front = Front(backends, scheme)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(front.handle, *listen, reuse_address=True)
    probing = asyncio.create_task(front.probe_forever())
    log.info("front listening at %s:%d masters=%s", listen[0], listen[1],
             ",".join(f"{h}:{p}" for h, p in backends))
    try:
        await stop.wait()
    finally:
        await cancel_and_wait(probing)
        server.close()


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    eventloop.run(run_front(args.listen, args.backend, args.scheme))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("front", help="one address for several masters (TCP pass-through)")
    p.add_argument("--listen", type=parse_listen, required=True, help="HOST:PORT to accept on")
    p.add_argument("--backend", type=parse_listen, action="append", required=True,
                   help="a master's HOST:PORT (repeat for each master)")
    p.add_argument("--scheme", choices=["https", "http"], default="https",
                   help="how the masters serve (for their /readyz probes)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(run=_run)
