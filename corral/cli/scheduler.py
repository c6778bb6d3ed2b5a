"""`corral scheduler`: the scheduler as its own process (as Borg and Kubernetes run it).

    corral scheduler --kubeconfig PATH [--server URL] [--bin-pack] [--leader-elect]

Without --leader-elect every scheduler process schedules; racing ones stay
correct (bindings and node reservations are compare-and-swaps). With it, one
holds the Lease kube-system/corral-scheduler and the others stand by.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from corral.cli import eventloop
from corral.cli.connection import add_connection_flags, connection
from corral.cli.logging_setup import setup_logging
from corral.cli.metrics_listen import add_metrics_flag, metrics_listener
from corral.client.http import Client
from corral.client.kubeconfig import KubeconfigError
from corral.client.leaderelection import LeaseTiming, process_identity, run_elected
from corral.scheduler.core import SchedulerOptions
from corral.scheduler.loop import LEASE_NAME, Scheduler
from corral.scheduler.metrics import SCHEDULER_METRICS

log = logging.getLogger("corral.scheduler")


def make_client(args: argparse.Namespace) -> Client:
    _, cfg = connection(args)
    return Client.from_config(cfg, user_agent="corral-scheduler")


async def run_scheduler(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    options = SchedulerOptions(bin_pack=args.bin_pack)
    identity = args.identity or process_identity()
    async with make_client(args) as client:
        async def work(writer: Client) -> None:
            await Scheduler(writer, options, instance=identity).run(stop)

        if not args.leader_elect:
            await work(client)
            return
        timing = LeaseTiming(args.lease_duration, args.renew_deadline, args.retry_period)
        log.info("leader election lease=kube-system/corral-scheduler identity=%s", identity)
        await run_elected(client, stop, LEASE_NAME, identity, work, timing)


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    try:
        with metrics_listener(args, [SCHEDULER_METRICS.registry]):
            eventloop.run(run_scheduler(args))
    except KubeconfigError as err:
        log.error("cannot start error=%s", err)
        return 2
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("scheduler", help="run the scheduler as its own process")
    add_connection_flags(p, several_servers=True)
    p.add_argument("--bin-pack", action="store_true",
                   help="score most-allocated nodes first (Borg/Mesos packing) instead of "
                        "spreading")
    p.add_argument("--leader-elect", action="store_true",
                   help="schedule only while holding the Lease kube-system/corral-scheduler")
    p.add_argument("--identity", default="", help="identity for leader election and "
                   "Events' reportingInstance (default HOSTNAME_PID)")
    p.add_argument("--lease-duration", type=float, default=15.0, help="seconds (default 15)")
    p.add_argument("--renew-deadline", type=float, default=10.0, help="seconds (default 10)")
    p.add_argument("--retry-period", type=float, default=2.0, help="seconds (default 2)")
    add_metrics_flag(p)
    p.add_argument("--log-level", default="info")
    p.set_defaults(run=_run)
