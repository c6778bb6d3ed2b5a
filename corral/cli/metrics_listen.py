"""`--metrics-listen HOST:PORT` for component processes (`corral scheduler`,
`corral controllers`): Prometheus text on http://HOST:PORT/metrics while the
component runs. Inside `corral master` the same families are on the master's
own /metrics instead."""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry

from corral.cli.master import parse_listen
from corral.client.metrics import MetricsServer

log = logging.getLogger("corral.metrics")


def add_metrics_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics-listen", type=parse_listen, default=None, metavar="HOST:PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (default: off)")


@contextlib.contextmanager
def metrics_listener(args: argparse.Namespace,
                     registries: Iterable[CollectorRegistry]) -> Iterator[MetricsServer | None]:
    """The metrics server asked for by --metrics-listen, closed on exit."""
    if args.metrics_listen is None:
        yield None
        return
    host, port = args.metrics_listen
    server = MetricsServer(host, port, registries)
    log.info("metrics listening address=%s:%d", host, server.port)
    try:
        yield server
    finally:
        server.close()
