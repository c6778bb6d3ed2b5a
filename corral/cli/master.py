"""`corral master`: the API server (and, as they land, scheduler and controllers)
in one asyncio process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from corral.api.server import ServerConfig, serve_forever
from corral.cli.logging_setup import setup_logging


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def add_master_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=Path(".corral"),
                   help="state, credentials and kubeconfig (default ./.corral)")
    p.add_argument("--store", default="",
                   help="sqlite:///path (default DATA_DIR/state.db) or etcd://h1:2379,...")
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 6443),
                   help="HOST:PORT to serve the API on (default 127.0.0.1:6443)")
    p.add_argument("--insecure-http", action="store_true",
                   help="serve plain HTTP instead of HTTPS (no auth headers from kubectl then)")
    p.add_argument("--tls-san", action="append", default=[],
                   help="extra host name or IP for the serving certificate")


def server_config(args: argparse.Namespace) -> ServerConfig:
    host, port = args.listen
    return ServerConfig(data_dir=args.data_dir, store_url=args.store, host=host, port=port,
                        insecure_http=args.insecure_http, extra_sans=list(args.tls_san))


async def run_master(cfg: ServerConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve_forever(cfg, stop)


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    cfg = server_config(args)
    logging.getLogger("corral.master").info(
        "starting master url=%s data_dir=%s", cfg.url, cfg.data_dir)
    asyncio.run(run_master(cfg))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("master", help="run the master: API server, scheduler, controllers")
    add_master_flags(p)
    p.add_argument("--log-level", default="info")
    p.set_defaults(run=_run)
