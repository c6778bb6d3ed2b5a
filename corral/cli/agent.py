"""`corral agent`: the node agent (register, heartbeat, run the pods bound here).

    corral agent --server https://master:6443 --name node-7 \\
        --token-file token --ca-file ca.crt [--node-ip 127.0.1.7] [--cpus 2 --memory 4Gi]

Credentials come from --kubeconfig (server, CA and token or client certificate),
or from --token-file and --ca-file; or, as kubelet TLS bootstrapping does, from
--bootstrap-kubeconfig: a short-lived bootstrap token (`corral token create
--bootstrap`) exchanged for the node's own client certificate, kept in
STATE_DIR/pki with STATE_DIR/kubeconfig naming it (later starts need no token). SIGTERM/SIGINT stop the agent; pods keep running under their
shims (a restarted agent adopts them) unless --stop-pods-on-exit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from corral.agent.agent import run_agent
from corral.agent.bootstrap import BootstrapRefused
from corral.agent.config import DEFAULT_POD_USER, AgentConfig, Reservation
from corral.agent.run_as import node_users
from corral.api.quantity import bytes_value, cpu_millis
from corral.cli import eventloop
from corral.cli.connection import add_connection_flags, connection
from corral.cli.limits import raise_open_files_limit
from corral.cli.logging_setup import setup_logging
from corral.client.kubeconfig import ClusterConfig, KubeconfigError, load_kubeconfig
from corral.private_files import closed_ancestor
from corral.proxy.mode import ProxyModeError


def _bytes(value: str) -> int:
    try:
        return bytes_value(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_agent_flags(p: argparse.ArgumentParser) -> None:
    add_connection_flags(p, several_servers=True, insecure=False)
    p.add_argument("--name", required=True, help="node name")
    p.add_argument("--bootstrap-kubeconfig", type=Path, default=None,
                   help="kubeconfig with a bootstrap token (corral token create --bootstrap): "
                        "the agent asks with it for the node's own client certificate")
    p.add_argument("--node-ip", default="127.0.0.1",
                   help="this node's address: InternalIP, where pod ports and the agent "
                        "server bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0,
                   help="port of the agent's own server (default: any free one)")
    p.add_argument("--state-dir", type=Path, default=Path(".corral-agent"),
                   help="runtime state, pod work dirs and logs (default ./.corral-agent)")
    p.add_argument("--cpus", type=float, default=None, help="CPUs to advertise")
    p.add_argument("--memory", type=_bytes, default=None, help="memory to advertise, e.g. 4Gi")
    p.add_argument("--pods", type=int, default=110, help="most pods this node runs")
    p.add_argument("--pod-pids-limit", type=int, default=1024,
                   help="processes a pod's container may have, as the kubelet's "
                        "podPidsLimit (default 1024; -1 for no limit)")
    p.add_argument("--pod-user", default=DEFAULT_POD_USER,
                   help="whom pods without securityContext.runAsUser run as: a user, "
                        "UID or UID:GID on this node (default %(default)s, which "
                        "scripts/install.sh creates; '' = the agent's own user)")
    p.add_argument("--reserve-cpu", default="0", help="CPU kept out of allocatable (e.g. 100m)")
    p.add_argument("--reserve-memory", type=_bytes, default=0,
                   help="memory kept out of allocatable (e.g. 256Mi)")
    p.add_argument("--heartbeat", type=float, default=1.0, help="Lease renewal period (s)")
    p.add_argument("--heartbeat-timeout", type=float, default=2.0,
                   help="a Lease renewal or status post gives up after this long and the "
                        "next one goes to another master (s)")
    p.add_argument("--status-interval", type=float, default=10.0,
                   help="Node status re-posted at least this often (s)")
    p.add_argument("--backoff-initial", type=float, default=10.0,
                   help="CrashLoopBackOff first delay (s)")
    p.add_argument("--backoff-cap", type=float, default=300.0,
                   help="CrashLoopBackOff longest delay (s)")
    p.add_argument("--no-cgroups", action="store_true",
                   help="do not use cgroups (rlimits only; reported in Node status)")
    p.add_argument("--stop-pods-on-exit", action="store_true",
                   help="stop every pod when the agent exits (corral up sets this)")
    p.add_argument("--dns-address", default="",
                   help="where the node's DNS server listens (default 127.0.2.N for node "
                        "IP 127.x.y.N)")
    p.add_argument("--dns-port", type=int, default=53,
                   help="DNS port (default 53; a free one when it cannot be bound)")
    p.add_argument("--proxy-mode", choices=["nftables", "userspace"], default=None,
                   help="Service data plane: nftables (the kernel forwards; the default "
                        "where nft works and the agent is root) or userspace (the agent "
                        "forwards; the fallback)")
    p.add_argument("--socket-lb", type=str.lower, choices=["true", "false"], default="true",
                   help="nftables mode: send TCP clusterIP connections straight to an "
                        "endpoint at connect() (an eBPF cgroup hook; default true, where "
                        "the kernel allows it); false: nftables DNATs every connection")
    p.add_argument("--log-level", default="info")


def _credentials(args: argparse.Namespace) -> tuple[list[str], ClusterConfig, str | None]:
    """(servers, how to reach them, a bootstrap token or None)."""
    if args.bootstrap_kubeconfig is None:
        servers, cluster = connection(args)
        return servers, cluster, None
    boot = load_kubeconfig(args.bootstrap_kubeconfig)
    if not boot.token:
        raise KubeconfigError(f"{args.bootstrap_kubeconfig} holds no bootstrap token")
    servers = list(args.server or [boot.server])
    ca_pem = args.ca_file.read_bytes() if args.ca_file else boot.ca_pem
    return servers, ClusterConfig(",".join(servers), ca_pem), boot.token


def _check_reachable(state_dir: Path) -> None:
    """Pods run as other users and reach their working directories by path under
    the state dir: a closed directory above it would fail every pod, so it stops
    the agent instead."""
    closed = closed_ancestor(state_dir)
    if closed is not None:
        raise ValueError(
            f"pods run as other users and could not reach their directories under "
            f"--state-dir {state_dir}: {closed} is mode {closed.stat().st_mode & 0o777:o}, "
            f"which others may not pass through; give a --state-dir below directories "
            f"everyone may search (e.g. /var/lib/corral/<node>), or chmod o+x {closed}")


def agent_config(args: argparse.Namespace) -> AgentConfig:
    servers, cluster, bootstrap = _credentials(args)
    token, ca_pem = cluster.token, cluster.ca_pem
    return AgentConfig(
        name=args.name, servers=servers, token=token, ca_pem=ca_pem, bootstrap_token=bootstrap,
        client_cert=cluster.client_cert, node_ip=args.node_ip,
        port=args.port, state_dir=args.state_dir, cpus=args.cpus, memory_bytes=args.memory,
        max_pods=args.pods, pod_pids_limit=args.pod_pids_limit, pod_user=args.pod_user,
        reservation=Reservation(cpu_millis(args.reserve_cpu), args.reserve_memory),
        heartbeat_seconds=args.heartbeat, heartbeat_timeout_seconds=args.heartbeat_timeout,
        status_interval_seconds=args.status_interval,
        backoff_initial_seconds=args.backoff_initial, backoff_cap_seconds=args.backoff_cap,
        stop_pods_on_exit=args.stop_pods_on_exit, allow_cgroups=not args.no_cgroups,
        dns_address=args.dns_address, dns_port=args.dns_port, proxy_mode=args.proxy_mode,
        socket_lb=args.socket_lb == "true",
    )


async def _main(cfg: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_agent(cfg, stop)


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level)
    raise_open_files_limit()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        cfg = agent_config(args)
        node_users(cfg.pod_user)  # an unknown --pod-user stops the agent before it starts
        _check_reachable(cfg.state_dir)
    except (KubeconfigError, OSError, ValueError) as err:
        print(f"error: {err}")
        return 1
    logging.getLogger("corral.agent").info(
        "starting agent node=%s servers=%s node_ip=%s state_dir=%s", cfg.name,
        ",".join(cfg.servers), cfg.node_ip, cfg.state_dir)
    try:
        eventloop.run(_main(cfg))
    except (ProxyModeError, BootstrapRefused) as err:
        print(f"error: {err}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("agent", help="run a node agent: register, heartbeat, run pods")
    add_agent_flags(p)
    p.set_defaults(run=_run)
