"""`corral controllers --server URL | --kubeconfig PATH [--leader-elect]`: the
controller manager as its own process, an ordinary API client. With
--leader-elect it stands by until it holds the Lease
kube-system/corral-controller-manager (the one `corral master` uses), so it can
run beside masters that do not disable their own controllers."""

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
from corral.client.kubeconfig import ClusterConfig, KubeconfigError
from corral.client.leaderelection import process_identity, run_elected
from corral.client.metrics import WORKQUEUE_METRICS
from corral.controllers.autoscaling import HPAOptions
from corral.controllers.endpointslice.plan import max_per_slice
from corral.controllers.job import JobOptions
from corral.controllers.manager import (
    ALL_CONTROLLERS,
    LEASE_NAME,
    ControllerManager,
    ManagerOptions,
)
from corral.controllers.nodelifecycle import NodeLifecycleOptions

log = logging.getLogger("corral.controllers")


def cluster_config(args: argparse.Namespace) -> ClusterConfig:
    return connection(args)[1]


def manager_options(args: argparse.Namespace) -> ManagerOptions:
    names = tuple(n for n in args.controllers.split(",") if n)
    unknown = [n for n in names if n not in ALL_CONTROLLERS]
    if unknown:
        raise KubeconfigError(f"unknown controllers: {', '.join(unknown)}")
    env = NodeLifecycleOptions.from_env()
    node = NodeLifecycleOptions(
        args.node_grace_period if args.node_grace_period is not None else env.grace_period,
        args.pod_eviction_timeout if args.pod_eviction_timeout is not None
        else env.eviction_timeout,
        args.node_monitor_period if args.node_monitor_period is not None
        else env.monitor_period)
    env_hpa = HPAOptions.from_env()
    hpa = HPAOptions(
        args.hpa_sync_period if args.hpa_sync_period is not None else env_hpa.sync_period,
        env_hpa.tolerance,
        args.hpa_downscale_stabilization if args.hpa_downscale_stabilization is not None
        else env_hpa.downscale_stabilization,
        env_hpa.cpu_initialization_period, env_hpa.initial_readiness_delay)
    slices = ManagerOptions.from_env().max_endpoints_per_slice
    if args.max_endpoints_per_slice is not None:
        try:
            slices = max_per_slice(args.max_endpoints_per_slice)
        except ValueError as err:
            raise KubeconfigError(f"--{err}") from err
    return ManagerOptions(names or ALL_CONTROLLERS, node, JobOptions.from_env(), hpa=hpa,
                          max_endpoints_per_slice=slices)


async def _main(cfg: ClusterConfig, options: ManagerOptions, leader_elect: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Client.from_config(cfg, user_agent="corral-controller-manager") as client:
        if not leader_elect:
            await ControllerManager(client, options).run(stop)
            return
        identity = process_identity()

        async def work(fenced: Client) -> None:
            await ControllerManager(fenced, options).run(stop)

        await run_elected(client, stop, LEASE_NAME, identity, work)


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    try:
        cfg = cluster_config(args)
        options = manager_options(args)
    except KubeconfigError as err:
        print(f"error: {err}")
        return 1
    log.info("starting controllers server=%s controllers=%s leader_elect=%s", cfg.server,
             ",".join(options.controllers), args.leader_elect)
    with metrics_listener(args, [WORKQUEUE_METRICS.registry]):
        eventloop.run(_main(cfg, options, args.leader_elect))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("controllers", help="run the controller manager as its own process")
    add_connection_flags(p, several_servers=True)
    p.add_argument("--leader-elect", action="store_true",
                   help="run only while holding the Lease kube-system/corral-controller-manager")
    p.add_argument("--controllers", default=",".join(ALL_CONTROLLERS),
                   help="comma-separated controllers to run (default: all)")
    p.add_argument("--node-grace-period", type=float, default=None,
                   help="seconds without a Lease renewal before a node is NotReady "
                        "(default 4, env CORRAL_NODE_GRACE_PERIOD)")
    p.add_argument("--pod-eviction-timeout", type=float, default=None,
                   help="seconds a node stays NotReady before its pods are deleted "
                        "(default 2, env CORRAL_POD_EVICTION_TIMEOUT)")
    p.add_argument("--node-monitor-period", type=float, default=None,
                   help="seconds between node health checks (default 0.5)")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", dest="hpa_sync_period",
                   type=float, default=None,
                   help="seconds between two looks at each HPA (default 15, env "
                        "CORRAL_HPA_SYNC_PERIOD)")
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization",
                   dest="hpa_downscale_stabilization", type=float, default=None,
                   help="seconds of recommendations an HPA without behavior scales down "
                        "after (default 300, env CORRAL_HPA_DOWNSCALE_STABILIZATION)")
    p.add_argument("--max-endpoints-per-slice", type=int, default=None,
                   help="endpoints the endpointslice controller puts in one slice, 1 to "
                        "1000 (default 100, env CORRAL_MAX_ENDPOINTS_PER_SLICE)")
    add_metrics_flag(p)
    p.add_argument("--log-level", default="info")
    p.set_defaults(run=_run)
