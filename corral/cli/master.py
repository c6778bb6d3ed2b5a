"""`corral master`: the API server, scheduler and controllers in one asyncio
process; it writes the kubeconfig every client reads."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from corral.api.allocation import (
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_SERVICE_CIDR,
    IpRange,
    PortRange,
    RangeError,
)
from corral.api.audit.policy import PolicyError
from corral.api.cert_reload import DEFAULT_INTERVAL_SECONDS
from corral.api.certificates.signer import DEFAULT_DURATION
from corral.api.connections import ConnectionLimits
from corral.api.encryption.config import ConfigError
from corral.api.fairness import MAX_REQUESTS_INFLIGHT
from corral.api.metrics import API_METRICS
from corral.api.server import ApiServer, ServerConfig
from corral.cli import eventloop
from corral.cli.limits import raise_open_files_limit
from corral.cli.logging_setup import setup_logging
from corral.cli.token import parse_ttl
from corral.client.asgi_transport import AsgiTransport
from corral.client.http import Client
from corral.client.kubeconfig import write_kubeconfig
from corral.client.leaderelection import (
    MASTER_LEASE_SECONDS,
    SOLE_MASTER_LEASE_SECONDS,
    LeaseTiming,
)
from corral.client.metrics import WORKQUEUE_METRICS
from corral.client.presence import announce
from corral.controllers import manager
from corral.offers import component as offers_component
from corral.offers.agentlink import AgentTLS
from corral.scheduler import loop as scheduler_loop
from corral.scheduler.metrics import SCHEDULER_METRICS


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_weights(value: str) -> dict[str, float]:
    """Mesos' --weights: "role1=weight1,role2=weight2" (weights > 0)."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        role, sep, weight = item.partition("=")
        try:
            number = float(weight)
        except ValueError:
            number = 0.0
        if not sep or not role or not number > 0:
            raise argparse.ArgumentTypeError(
                f"--mesos-weights wants ROLE=WEIGHT,... with weights > 0, got {item!r}")
        weights[role] = number
    return weights


def add_mesos_flags(p: argparse.ArgumentParser, *, default: str | None = None) -> None:
    p.add_argument("--mesos-listen", type=parse_listen, default=default, metavar="HOST:PORT",
                   help="serve the Mesos v1 scheduler API here (Mesos' port is 5050)"
                        + (f" (default {default})" if default else "; off unless given"))
    p.add_argument("--mesos-weights", type=parse_weights, default={}, metavar="ROLE=W,...",
                   help="DRF weights of Mesos roles (default 1 each), as Mesos' --weights")
    p.add_argument("--mesos-authenticate", type=_bool, default=True, metavar="true|false",
                   help="frameworks must authenticate (HTTP Basic from --mesos-credentials, "
                        "or a bearer token of the API), as Mesos' --authenticate_frameworks "
                        "(default true; false: every caller is system:anonymous to RBAC)")
    p.add_argument("--mesos-credentials", type=Path, default=None, metavar="PATH",
                   help="principals and secrets, Mesos' --credentials format (default "
                        "DATA_DIR/mesos-credentials, made with the principal "
                        "corral-framework on first start)")


def _bool(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value.lower() == "true"


def mesos_config(args: argparse.Namespace) -> offers_component.MesosConfig | None:
    listen = getattr(args, "mesos_listen", None)
    if listen is None:
        return None
    host, port = listen
    credentials = args.mesos_credentials or Path(args.data_dir) / "mesos-credentials"
    return offers_component.MesosConfig(host, port, weights=dict(args.mesos_weights),
                                        authenticate=args.mesos_authenticate,
                                        credentials=credentials)


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
    p.add_argument("--service-cidr", type=_checked(IpRange.parse), default=DEFAULT_SERVICE_CIDR,
                   help="Services' clusterIPs come from this range inside 127.0.0.0/8 "
                        f"(default {DEFAULT_SERVICE_CIDR})")
    p.add_argument("--service-node-port-range", type=_checked(PortRange.parse),
                   default=DEFAULT_NODE_PORT_RANGE,
                   help="Services' nodePorts come from LOW-HIGH "
                        f"(default {DEFAULT_NODE_PORT_RANGE})")
    p.add_argument("--request-header-timeout", type=float, default=10.0,
                   help="seconds a connection may take to send a request's headers "
                        "(default 10; slower ones are closed)")
    p.add_argument("--max-requests-inflight", type=int, default=MAX_REQUESTS_INFLIGHT,
                   help="requests executing at once over all priority lanes (default "
                        f"{MAX_REQUESTS_INFLIGHT}); past a lane's seats they queue per client")
    p.add_argument("--encryption-provider-config", default="", metavar="PATH",
                   help="an EncryptionConfiguration (apiserver.config.k8s.io/v1) saying how "
                        "Secrets are encrypted at rest; re-read when it changes (default "
                        "DATA_DIR/encryption-config.yaml, made with a new secretbox key)")
    p.add_argument("--audit-log-path", default="", metavar="PATH",
                   help="write an audit.k8s.io/v1 Event per request to PATH, one JSON line "
                        "each (default: none for `corral master`, DATA_DIR/audit.log for "
                        "`corral up`)")
    p.add_argument("--audit-policy-file", default="", metavar="PATH",
                   help="an audit.k8s.io/v1 Policy: which requests are logged at which level "
                        "(default: corral's, Metadata for reads and Secrets, Request for writes)")
    p.add_argument("--audit-log-maxsize", type=float, default=100, metavar="MB",
                   help="megabytes before the audit log is rotated (default 100; 0: never)")
    p.add_argument("--audit-log-maxbackup", type=int, default=10, metavar="N",
                   help="rotated audit log files kept (default 10; 0: all)")
    p.add_argument("--cluster-signing-duration", type=_signing_duration,
                   default=DEFAULT_DURATION, metavar="DURATION",
                   help="the longest certificate the cluster CA signs for a "
                        "CertificateSigningRequest, nodes' included (default 365d; e.g. 30s, "
                        "12h); agents renew theirs at 70-90%% of its life")
    p.add_argument("--cert-check-interval", type=_positive_seconds,
                   default=DEFAULT_INTERVAL_SECONDS, metavar="SECONDS",
                   help="how often the master renews its own serving and kubelet-client "
                        "certificates when within 30 days of their end, and reloads them "
                        "when their files changed (default 3600)")
    p.add_argument("--max-connections", type=int, default=0,
                   help="connections held at once; past it an idle one is closed "
                        "(default: the open files limit less a reserve)")


def _signing_duration(value: str) -> dt.timedelta:
    try:
        return parse_ttl(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--cluster-signing-duration wants a duration like "
                                         f"30s, 12h or 365d, got {value!r}") from None


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"wants a number of seconds above 0, got {value!r}")
    return seconds


def _lease_seconds(value: str) -> float:
    try:
        seconds = float(value)
        LeaseTiming.of_lease(seconds)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--leader-lease: {err}") from None
    return seconds


def leader_lease_seconds(store_url: str, flag: float | None) -> float:
    """The in-process components' leader Lease: the flag's, else short where
    several masters can share the store (etcd), client-go's where one is alone."""
    if flag is not None:
        return flag
    shared = store_url.lower().startswith("etcd://")
    return MASTER_LEASE_SECONDS if shared else SOLE_MASTER_LEASE_SECONDS


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type that rejects what ``parse`` rejects and keeps the text."""
    def check(value: str) -> str:
        try:
            parse(value)
        except RangeError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return value

    return check


def server_config(args: argparse.Namespace) -> ServerConfig:
    host, port = args.listen
    return ServerConfig(data_dir=args.data_dir, store_url=args.store, host=host, port=port,
                        insecure_http=args.insecure_http, extra_sans=list(args.tls_san),
                        service_cidr=args.service_cidr,
                        node_port_range=args.service_node_port_range,
                        connections=ConnectionLimits(
                            header_timeout=args.request_header_timeout,
                            max_connections=args.max_connections),
                        max_requests_inflight=args.max_requests_inflight,
                        encryption_config=args.encryption_provider_config,
                        audit_log_path=args.audit_log_path,
                        audit_policy_file=args.audit_policy_file,
                        audit_log_maxsize=args.audit_log_maxsize,
                        audit_log_maxbackup=args.audit_log_maxbackup,
                        cluster_signing_duration=args.cluster_signing_duration,
                        cert_check_seconds=args.cert_check_interval,
                        kubeconfig_server=getattr(args, "kubeconfig_server", ""))


Component = Callable[[Client, asyncio.Event, LeaseTiming], Coroutine[Any, Any, None]]

# Components that run inside `corral master` as API clients, leader-elected with
# the given timing; each returns when ``stop`` is set.
IN_PROCESS: dict[str, Component] = {
    "scheduler": scheduler_loop.run_in_master,
    "controllers": manager.run_in_master,
}
# The Lease each one is led by: /readyz fails while no master leads it.
LEADER_LEASES = {
    "scheduler": ("kube-system", "corral-scheduler"),
    "controllers": ("kube-system", "corral-controller-manager"),
}

log = logging.getLogger("corral.master")


def component_registries(name: str) -> list[CollectorRegistry]:
    """The metric registries of an in-process component."""
    if name == "scheduler":
        return [SCHEDULER_METRICS.registry]
    if name == "controllers":
        return [WORKQUEUE_METRICS.registry]
    return []


async def _run_components(server: ApiServer, names: list[str], stop: asyncio.Event,
                          timing: LeaseTiming,
                          mesos: offers_component.MesosConfig | None = None) -> None:
    """Run the in-process components as ordinary API clients whose requests go
    straight into the server's app (no TLS or sockets, same handlers and auth);
    their metrics appear on the master's /metrics."""
    assert server.app is not None
    for name in names:
        for registry in component_registries(name):
            API_METRICS.include(registry)
    transport = AsgiTransport(server.app)
    async with contextlib.AsyncExitStack() as stack:
        # The master's own presence writes as the admin; each component as itself.
        client = await stack.enter_async_context(
            Client(server.cfg.url, server.token, transport=transport))
        # The CA too, though no TLS is spoken: what pods verify the API by is published.
        own = {name: await stack.enter_async_context(Client(
            server.cfg.url, server.component_tokens.get(name) or server.token,
            ca_pem=server.ca_pem, transport=transport)) for name in names}
        runs: list[asyncio.Task[None]] = []
        # Every master says it is alive: `corral status` lists the masters, and the
        # Endpoints of default/kubernetes (where pods find the API) are made from it.
        runs.append(asyncio.create_task(announce(client, server.cfg.url, stop),
                                        name="presence"))
        for name in names:
            log.info("component starting name=%s", name)
            runs.append(asyncio.create_task(IN_PROCESS[name](own[name], stop, timing),
                                            name=name))
        if mesos is not None:
            mesos_client = await stack.enter_async_context(Client(
                server.cfg.url, server.component_tokens["mesos"], transport=transport))
            # It calls agents directly as the master does (corral/offers/agentlink.py).
            agent_tls = AgentTLS(server.agent_context())
            runs.append(asyncio.create_task(
                offers_component.run_in_master(mesos_client, stop, timing, mesos, agent_tls),
                name="mesos"))
        await asyncio.gather(*runs)
        await stop.wait()  # with every component disabled, the API serves alone


async def run_master(cfg: ServerConfig, components: list[str],
                     timing: LeaseTiming | None = None,
                     mesos: offers_component.MesosConfig | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = ApiServer(cfg)
    await server.open()
    write_kubeconfig(cfg.kubeconfig_path, cfg.kubeconfig_server or cfg.url, server.ca_pem,
                     server.token)
    for name, token in server.component_tokens.items():
        # What `corral scheduler|controllers --kubeconfig` use: their own identity.
        write_kubeconfig(cfg.data_dir / f"{name}.kubeconfig", cfg.kubeconfig_server or cfg.url,
                         server.ca_pem, token)
    assert server.health is not None
    for name in components:
        server.health.leader(*LEADER_LEASES[name])
    try:
        serving = asyncio.create_task(server.run())
        parts = asyncio.create_task(_run_components(
            server, components, stop,
            timing or LeaseTiming.of_lease(leader_lease_seconds(cfg.store_url, None)), mesos))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, parts, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        # Components first: they end their requests while the store is still open.
        await asyncio.gather(parts, stopping, return_exceptions=True)
        server.stop()
        await serving
        if not parts.cancelled():
            parts.result()  # a component that crashed makes the master exit non-zero
    finally:
        await server.close()


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    raise_open_files_limit()
    cfg = server_config(args)
    logging.getLogger("corral.master").info(
        "starting master url=%s data_dir=%s", cfg.url, cfg.data_dir)
    components = [c for c in IN_PROCESS if c not in args.disable]
    try:
        lease = leader_lease_seconds(cfg.store_url, args.leader_lease)
        eventloop.run(run_master(cfg, components, LeaseTiming.of_lease(lease),
                                 mesos_config(args)))
    except ConfigError as err:
        raise SystemExit(f"--encryption-provider-config: {err}") from None
    except PolicyError as err:
        raise SystemExit(f"audit log: {err}") from None
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("master", help="run the master: API server, scheduler, controllers")
    add_master_flags(p)
    p.add_argument("--leader-lease", type=_lease_seconds, default=None, metavar="SECONDS",
                   help="how long the in-process components' leader Leases last: with "
                        "several masters, a standby takes over this long after the leader "
                        f"stopped renewing (default {MASTER_LEASE_SECONDS:g} on etcd, "
                        f"{SOLE_MASTER_LEASE_SECONDS:g} on SQLite, where no standby can be)")
    p.add_argument("--kubeconfig-server", default="", metavar="URL",
                   help="the server URL written into DATA_DIR/kubeconfig (default: this "
                        "master's own; corral up --masters N names its front)")
    add_mesos_flags(p)
    p.add_argument("--log-level", default="info")
    p.add_argument("--disable", action="append", default=[], choices=sorted(IN_PROCESS),
                   help="do not run this component in-process (run it as its own process)")
    p.set_defaults(run=_run)
