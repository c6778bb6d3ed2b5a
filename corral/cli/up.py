"""`corral up`: a whole dev cluster on this machine, every part a child process:
the master (or, with --masters N, a local N-member etcd, N masters and the front
kubectl talks to) and, with --agents N, N node agents. Ctrl-C stops them all.

    --masters 1 (default)   master at --listen on SQLite (DATA_DIR/state.db)
    --masters N             etcd-1..N (corral.cli.local_etcd; or --store etcd://...),
                            master-1..N at --listen's port + 1..N, and the front at
                            --listen: the kubeconfig names the front, the agents
                            name every master (they fail over themselves)

Agents are node-1..N, each with its own state dir under DATA_DIR/agents, its own
loopback address 127.0.1.N as node IP, and an equal slice of this machine's CPUs
and memory. Pods outlive agents by design (their shims are detached), so `up`
runs agents with --stop-pods-on-exit and, after they exit, stops whatever an
agent that had to be killed left running.

A child that dies is reported with the command that starts it again; the rest
keeps running, and nothing is restarted automatically (supervisor.py says why).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from corral.api.audit.policy import ensure_policy_file
from corral.api.token_store import BOOTSTRAP_TTL, create_token, revoke_token
from corral.cli.dashboard import dashboard_url
from corral.cli.local_etcd import EtcdMissing, LocalEtcd
from corral.cli.master import add_master_flags, add_mesos_flags, server_config
from corral.cli.supervisor import Child, Supervisor, corral_argv
from corral.client.kubeconfig import load_kubeconfig, write_kubeconfig
from corral.objects import status
from corral.offers.auth import ensure_credentials
from corral.port_probe import bind_error
from corral.private_files import SEARCH_ONLY, closed_ancestor, mark_self_secured, private_dir

# Agents stop their pods on exit with at most 10 s of grace each (in parallel).
AGENT_STOP_GRACE = 15.0
READY_TIMEOUT = 60.0
VAR_LIB = Path("/var/lib/corral")  # agents' state when the data dir is closed to pods


def _wait_ready(url: str, child: Child, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc is not None and child.proc.poll() is not None:
            raise SystemExit(child.died())
        try:
            if httpx.get(f"{url}/readyz", verify=False, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{child.name} did not become ready at {url} within {timeout:.0f}s; "
                     f"see {child.log_path}")


def _wait_etcd(local: LocalEtcd, children: list[Child], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    for member, child in zip(local.members, children):
        while True:
            if child.proc is not None and child.proc.poll() is not None:
                raise SystemExit(child.died())
            try:
                r = httpx.get(f"{member.client_url}/health", timeout=1.0)
                if r.status_code == 200 and r.json().get("health") == "true":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"etcd {member.name} not healthy within {timeout:.0f}s; "
                                 f"see {child.log_path}")
            time.sleep(0.1)


def _audit_args(args: argparse.Namespace, index: int) -> list[str]:
    """The audit log is on in `up`: DATA_DIR/audit.log (each of several masters its
    own file, audit-master-<i>.log) with DATA_DIR/audit-policy.yaml."""
    path = Path(args.audit_log_path or args.data_dir / "audit.log").resolve()
    if args.masters > 1:
        path = path.with_name(f"{path.stem}-master-{index}{path.suffix}")
    policy = Path(args.audit_policy_file or ensure_policy_file(Path(args.data_dir))).resolve()
    return ["--audit-log-path", str(path), "--audit-policy-file", str(policy),
            "--audit-log-maxsize", str(args.audit_log_maxsize),
            "--audit-log-maxbackup", str(args.audit_log_maxbackup)]


def _master_args(args: argparse.Namespace, port: int, store: str,
                 kubeconfig_server: str = "", index: int = 1) -> list[str]:
    host, _ = args.listen
    out = ["master", "--data-dir", str(args.data_dir), "--listen", f"{host}:{port}",
           *_audit_args(args, index)]
    if args.mesos_listen is not None:
        # Master i serves the Mesos API on the port after master i-1's: a framework
        # given the first one is redirected (307) to whichever leads.
        mesos_host, mesos_port = args.mesos_listen
        out += ["--mesos-listen", f"{mesos_host}:{mesos_port + index - 1}"]
        if args.mesos_weights:
            out += ["--mesos-weights",
                    ",".join(f"{r}={w:g}" for r, w in args.mesos_weights.items())]
        out += ["--mesos-authenticate", str(args.mesos_authenticate).lower()]
        if args.mesos_credentials is not None:
            out += ["--mesos-credentials", str(args.mesos_credentials)]
    if store:
        out += ["--store", store]
    if kubeconfig_server:
        out += ["--kubeconfig-server", kubeconfig_server]
    if args.insecure_http:
        out.append("--insecure-http")
    if args.encryption_provider_config:
        out += ["--encryption-provider-config",
                str(Path(args.encryption_provider_config).resolve())]
    for san in args.tls_san:
        out += ["--tls-san", san]
    return out + _server_args(args)


def _server_args(args: argparse.Namespace) -> list[str]:
    """The master flags `up` takes (add_master_flags) and hands on as given; they
    were once accepted here and silently not passed."""
    out = ["--service-cidr", str(args.service_cidr),
           "--service-node-port-range", str(args.service_node_port_range),
           "--request-header-timeout", repr(float(args.request_header_timeout)),
           "--max-requests-inflight", str(args.max_requests_inflight),
           "--cluster-signing-duration",
           f"{int(args.cluster_signing_duration.total_seconds())}s"]
    if args.max_connections:
        out += ["--max-connections", str(args.max_connections)]
    return out


class ControlPlane:
    """The masters (and etcd, and the front) `up` started: their URLs."""

    def __init__(self, url: str, masters: list[str], etcd: LocalEtcd | None) -> None:
        self.url = url  # what kubectl uses
        self.masters = masters  # every master's own URL (the agents get all of them)
        self.etcd = etcd


Address = tuple[str, int]


def _listen_addresses(args: argparse.Namespace, host: str, port: int) -> dict[Address, str]:
    """Every address the control plane will listen on, and whose it is."""
    addresses = {(host, port): "master" if args.masters == 1 else "front"}
    if args.masters > 1:
        addresses.update({(host, port + i): f"master-{i}" for i in range(1, args.masters + 1)})
    if args.mesos_listen is not None:
        mesos_host, mesos_port = args.mesos_listen
        addresses.update({(mesos_host, mesos_port + i): f"master-{i + 1}'s Mesos API"
                          for i in range(args.masters)})
    return addresses


def _check_free(addresses: dict[Address, str], held: dict[int, str]) -> None:
    """Refuse to start when an address the control plane needs is in use, by another
    program or by one of our own (``held``: the local etcd members' ports), rather
    than have a master die on it half way through starting."""
    problems = []
    for (host, port), who in addresses.items():
        if port in held:
            problems.append(f"port {port} ({who}) is {held[port]}'s")
            continue
        error = bind_error(host, port)
        if error is not None:
            problems.append(f"{host}:{port} ({who}): {error.strerror}")
    if problems:
        raise SystemExit("cannot start: " + "; ".join(problems) +
                         " (choose others with --listen and --mesos-listen)")


def _start_control_plane(args: argparse.Namespace, sup: Supervisor) -> ControlPlane:
    cfg = server_config(args)
    logs = args.data_dir / "logs"
    addresses = _listen_addresses(args, cfg.host, cfg.port)
    if args.masters == 1:
        _check_free(addresses, {})
        child = sup.start(Child("master", "master", corral_argv(
            *_master_args(args, cfg.port, args.store)), logs / "master.log"))
        _wait_ready(cfg.url, child)
        return ControlPlane(cfg.url, [cfg.url], None)
    local, store, held = None, args.store, {}
    if not store:
        local = LocalEtcd.load_or_create(args.data_dir / "etcd", args.masters)
        held = {p: m.name for m in local.members for p in (m.client_port, m.peer_port)}
    _check_free(addresses, held)
    if local is not None:
        members = [sup.start(Child(m.name, "etcd member", local.command(m),
                                   logs / f"{m.name}.log")) for m in local.members]
        _wait_etcd(local, members)
        store = local.store_url
    scheme = "http" if args.insecure_http else "https"
    host = cfg.url.split("://", 1)[1].rsplit(":", 1)[0]
    urls = [f"{scheme}://{host}:{cfg.port + i}" for i in range(1, args.masters + 1)]
    masters = []
    for i, url in enumerate(urls, start=1):
        masters.append(sup.start(Child(f"master-{i}", "master", corral_argv(
            *_master_args(args, cfg.port + i, store, cfg.url, i)), logs / f"master-{i}.log")))
        if i == 1:  # it makes the CA, token and certificate the others reuse
            _wait_ready(url, masters[0])
    for url, child in zip(urls[1:], masters[1:]):
        _wait_ready(url, child)
    backends = [a for i in range(1, args.masters + 1)
                for a in ("--backend", f"{cfg.host}:{cfg.port + i}")]
    front = sup.start(Child("front", "front for kubectl", corral_argv(
        "front", "--listen", f"{cfg.host}:{cfg.port}", "--scheme", scheme, *backends),
        logs / "front.log"))
    _wait_ready(cfg.url, front)
    return ControlPlane(cfg.url, urls, local)


def agents_root(args: argparse.Namespace) -> Path:
    """Where the agents keep their state: beside the master's, unless a directory
    on the way to it is closed to others (a checkout under /root), since pods run
    as other users and reach their working directories by path. Then a directory
    of /var/lib/corral named after the data dir, so the next `up` finds it again."""
    data_dir = Path(args.data_dir).resolve()
    if closed_ancestor(data_dir / "agents") is None:
        return data_dir / "agents"
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return VAR_LIB / f"up-{digest}"


def _agent_dir(args: argparse.Namespace, index: int) -> Path:
    return agents_root(args) / f"node-{index}"


def _bootstrap_kubeconfig(args: argparse.Namespace, admin: Path) -> tuple[Path, str]:
    """A kubeconfig with a short-lived bootstrap token, and the token's id: each
    agent trades it for its own client certificate, system:node:node-<index> in
    system:nodes (never the admin's credential), as kubelet TLS bootstrapping does;
    RBAC's system:node role, narrowed by NodeRestriction, is all that gives it."""
    token, issued = create_token(Path(args.data_dir), None, BOOTSTRAP_TTL)
    admin_cfg = load_kubeconfig(admin)
    path = (Path(args.data_dir) / "bootstrap-kubeconfig").resolve()
    write_kubeconfig(path, admin_cfg.server, admin_cfg.ca_pem, token)
    return path, issued.id


def _agent_args(args: argparse.Namespace, url: str, bootstrap: Path, index: int) -> list[str]:
    count = args.agents
    cpus = max((psutil.cpu_count() or 1) / count, 0.1)
    memory_mi = psutil.virtual_memory().total // count // (1024 * 1024)
    return ["agent", "--server", url, "--name", f"node-{index}",
            "--bootstrap-kubeconfig", str(bootstrap),
            "--node-ip", f"127.0.1.{index}", "--state-dir", str(_agent_dir(args, index)),
            "--cpus", f"{cpus:.2f}", "--memory", f"{memory_mi}Mi", "--stop-pods-on-exit",
            *(["--proxy-mode", args.proxy_mode] if args.proxy_mode else []),
            f"--socket-lb={args.socket_lb}"]


def _stop_leftover_pods(args: argparse.Namespace) -> None:
    """Containers of agents that did not stop them (killed after the grace), and
    each node's shim launcher: the cluster is over, nothing of it stays."""
    from corral.agent.runtime.launcher import stop_launcher
    from corral.agent.runtime.process import ProcessRuntime

    async def stop_all(runtime: ProcessRuntime) -> None:
        for state in await runtime.list():
            if state.running:
                await runtime.stop(state.container_id, 0)

    for index in range(1, args.agents + 1):
        runtime_dir = _agent_dir(args, index) / "runtime"
        if runtime_dir.exists():
            asyncio.run(stop_all(ProcessRuntime(runtime_dir)))
            stop_launcher(runtime_dir)


def _remove_proxy_table(urls: list[str], kubeconfig: Path) -> None:
    """The agents' nftables table, when every agent was killed before removing it
    (an agent that stops cleanly removes it as the last one out)."""
    from corral.proxy.hostlock import HostLock
    from corral.proxy.mode import nftables_unavailable, table_name
    from corral.proxy.nftables import delete_table

    if not kubeconfig.exists() or nftables_unavailable() is not None:
        return
    table = table_name(load_kubeconfig(kubeconfig).ca_pem, urls)
    if HostLock(table).reap(lambda: delete_table(table)):
        print(f"removed the agents' nftables table ip {table}", flush=True)


def _apply(paths: list[str], kubeconfig: Path) -> None:
    """Apply the manifests; a failure is reported and the cluster stays up."""
    from corral.cli.apply import apply_paths
    from corral.cli.verb import error_line

    try:
        asyncio.run(apply_paths(paths, kubeconfig=str(kubeconfig)))
    except Exception as err:  # noqa: BLE001 - the user sees why, the cluster keeps running
        print(error_line(err), file=sys.stderr, flush=True)


def _ready_nodes(kubeconfig: Path) -> int:
    from corral.client.http import Client

    async def count() -> int:
        async with Client.from_kubeconfig(kubeconfig) as client:
            page = await client.list("Node")
        return sum(1 for node in page.items if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status(node).get("conditions") or []))

    return asyncio.run(count())


def _wait_nodes_ready(kubeconfig: Path, agents: int, sup: Supervisor,
                      timeout: float = 60.0) -> bool:
    """Until every agent's node is Ready, so the first workload is spread over all
    of them instead of landing on whichever registered first. False if some
    did not make it in time."""
    deadline = time.monotonic() + timeout
    while agents and _ready_nodes(kubeconfig) < agents:
        if len(sup.alive()) < len(sup.children):
            raise SystemExit("a cluster process exited while starting; see its log")
        if time.monotonic() > deadline:
            print(f"warning: not all {agents} nodes Ready after {timeout:.0f}s", flush=True)
            return False
        time.sleep(0.2)
    return True


def _consequence(plane: ControlPlane) -> Callable[[Child], str]:
    """What a death means for the cluster, said when it is reported."""
    def say(child: Child) -> str:
        if child.role == "agent":
            return ("Its node goes NotReady and its pods are replaced on the other nodes; "
                    "the rest of the cluster keeps running.")
        if child.role == "master" and len(plane.masters) == 1:
            return ("The API is down until it is started again; the agents keep their pods "
                    "running and reconnect then.")
        if child.role == "master":
            return ("The other masters keep serving; a leader Lease it held passes to a "
                    "standby within seconds.")
        if child.role == "etcd member":
            return "etcd goes on while a majority of its members is up."
        return f"kubectl loses its address; each master still answers at {', '.join(plane.masters)}."
    return say


def _mesos_credentials(args: argparse.Namespace) -> tuple[Path, str, str] | None:
    """The Mesos endpoint's credentials file and its principal and secret (made
    here, before the masters read it, when new); None without authentication."""
    if args.mesos_listen is None or not args.mesos_authenticate:
        return None
    path = args.mesos_credentials or Path(args.data_dir) / "mesos-credentials"
    return (path, *ensure_credentials(path))


def _banner(plane: ControlPlane, kubeconfig: Path, logs: Path, agents: int,
            mesos: tuple[str, int] | None = None,
            credentials: tuple[Path, str, str] | None = None) -> str:
    token = load_kubeconfig(kubeconfig).token
    nodes = ", ".join(f"node-{i}" for i in range(1, agents + 1))
    lines = [f"corral is up\n  API:        {plane.url}"]
    if mesos is not None:
        lines.append(f"  mesos:      http://{mesos[0]}:{mesos[1]} (Mesos v1 scheduler API)")
        if credentials is not None:
            path, principal, secret = credentials
            lines.append(f"              principal {principal}, secret {secret} ({path}; "
                         "HTTP Basic, as pymesos' principal= and secret=)")
        else:
            lines.append("              unauthenticated (--mesos-authenticate=false)")
    if len(plane.masters) > 1:
        lines.append(f"  masters:    {', '.join(plane.masters)} (the API address is a front "
                     "that reaches any live one)")
    if plane.etcd is not None:
        lines.append(f"  etcd:       {plane.etcd.endpoints}")
    lines += [f"  kubeconfig: {kubeconfig}", f"  token:      {token}",
              f"  dashboard:  {dashboard_url(plane.url)}   (one-time login: corral dashboard)",
              f"  logs:       {logs.resolve()}", f"  agents:     {nodes or 'none'}",
              f"  try:        export KUBECONFIG={kubeconfig}; kubectl get all -A",
              "Ctrl-C stops the cluster."]
    return "\n".join(lines)


def _supervise(sup: Supervisor, plane: ControlPlane) -> int:
    consequence = _consequence(plane)
    while True:
        sup.report_deaths(consequence)
        if not sup.alive():
            print("every cluster process has exited; stopping", flush=True)
            return 1
        time.sleep(0.5)


def _run(args: argparse.Namespace) -> int:
    if args.masters < 1 or args.agents < 0:
        raise SystemExit("--masters must be 1 or more and --agents 0 or more")
    if args.masters > 1 and args.store.startswith("sqlite"):
        raise SystemExit("several masters need etcd: leave --store out (a local etcd is "
                         "started) or give --store etcd://...")
    cfg = server_config(args)
    logs = args.data_dir / "logs"
    sup = Supervisor()
    plane: ControlPlane | None = None

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # Started in the background of a script, SIGINT arrives ignored: Ctrl-C anyway.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        credentials = _mesos_credentials(args)  # before any master reads the file
        plane = _start_control_plane(args, sup)
        kubeconfig = cfg.kubeconfig_path.resolve()
        if args.agents:
            bootstrap, token_id = _bootstrap_kubeconfig(args, kubeconfig)
            agents = agents_root(args)
            private_dir(agents.parent, SEARCH_ONLY)
            private_dir(agents, SEARCH_ONLY)
            mark_self_secured(agents)  # each agent secures its own state below
            if not agents.is_relative_to(Path(args.data_dir).resolve()):
                print(f"agents' state in {agents} (pods run as other users, who may "
                      f"not pass through {closed_ancestor(Path(args.data_dir).resolve())})",
                      flush=True)
            for index in range(1, args.agents + 1):
                sup.start(Child(f"node-{index}", "agent", corral_argv(
                    *_agent_args(args, ",".join(plane.masters), bootstrap, index)),
                    logs / f"node-{index}.log"))
            if _wait_nodes_ready(kubeconfig, args.agents, sup):
                # Each agent holds its certificate now (and starts on it again): the
                # token that could make any node is of no use to anyone any more.
                revoke_token(Path(args.data_dir), token_id)
        print(_banner(plane, kubeconfig, logs, args.agents, args.mesos_listen, credentials),
              flush=True)
        if args.apply:
            _apply(args.apply, kubeconfig)
        return _supervise(sup, plane)
    except EtcdMissing as err:
        raise SystemExit(str(err)) from None
    except KeyboardInterrupt:
        print("stopping the cluster", flush=True)
        return 0
    finally:
        sup.stop_all(grace=AGENT_STOP_GRACE)
        _stop_leftover_pods(args)
        _remove_proxy_table(plane.masters if plane else [cfg.url],
                            cfg.kubeconfig_path.resolve())


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="run a local cluster (master + agents) until Ctrl-C")
    add_master_flags(p)
    add_mesos_flags(p, default="127.0.0.1:5050")
    p.add_argument("--masters", type=int, default=1,
                   help="masters to run; more than 1 runs them on a local etcd of as many "
                        "members (or on --store etcd://...) behind one front for kubectl")
    p.add_argument("--agents", type=int, default=0, help="node agents to start")
    p.add_argument("--apply", action="append", default=[], metavar="PATH",
                   help="manifests to apply once the cluster is up (file or directory)")
    p.add_argument("--proxy-mode", choices=["nftables", "userspace"], default=None,
                   help="the agents' Service data plane (default: nftables where it works)")
    p.add_argument("--socket-lb", type=str.lower, choices=["true", "false"], default="true",
                   help="nftables mode: TCP clusterIP connections go straight to an endpoint "
                        "at connect() where the kernel allows (default true)")
    p.set_defaults(run=_run)
