"""`corral up`: a whole dev cluster on this machine — the master (and, with
--agents N, N node agents) as child processes. Ctrl-C stops them all.

Agents are node-1..N, each with its own state dir under DATA_DIR/agents, its own
loopback address 127.0.1.N as node IP, and an equal slice of this machine's CPUs
and memory. Pods outlive agents by design (their shims are detached), so `up`
runs agents with --stop-pods-on-exit and, after they exit, stops whatever an
agent that had to be killed left running, and removes the cluster's nftables
table if no agent on this host is left to do it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

from corral.cli.dashboard import dashboard_url
from corral.cli.master import add_master_flags, server_config
from corral.client.kubeconfig import load_kubeconfig

# Agents stop their pods on exit with at most 10 s of grace each (in parallel).
AGENT_STOP_GRACE = 15.0


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    # Own process group: a Ctrl-C in the terminal reaches `up`, which stops the
    # children in order, instead of all of them at once.
    return subprocess.Popen([sys.executable, "-m", "corral.cli.main", *args],
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the master exited with code {proc.returncode}; see its log")
        try:
            if httpx.get(f"{url}/readyz", verify=False, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the master did not become ready at {url} within {timeout:.0f}s")


def stop_children(procs: list[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """SIGTERM each child's process group, wait, then SIGKILL what is left."""
    for proc in reversed(procs):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for proc in reversed(procs):
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _master_args(args: argparse.Namespace) -> list[str]:
    host, port = args.listen
    out = ["master", "--data-dir", str(args.data_dir), "--listen", f"{host}:{port}"]
    if args.store:
        out += ["--store", args.store]
    if args.insecure_http:
        out.append("--insecure-http")
    for san in args.tls_san:
        out += ["--tls-san", san]
    return out


def _agent_dir(args: argparse.Namespace, index: int) -> Path:
    return Path(args.data_dir) / "agents" / f"node-{index}"


def _agent_args(args: argparse.Namespace, url: str, kubeconfig: Path, index: int) -> list[str]:
    count = args.agents
    cpus = max((psutil.cpu_count() or 1) / count, 0.1)
    memory_mi = psutil.virtual_memory().total // count // (1024 * 1024)
    return ["agent", "--server", url, "--name", f"node-{index}", "--kubeconfig", str(kubeconfig),
            "--node-ip", f"127.0.1.{index}", "--state-dir", str(_agent_dir(args, index)),
            "--cpus", f"{cpus:.2f}", "--memory", f"{memory_mi}Mi", "--stop-pods-on-exit",
            *(["--proxy-mode", args.proxy_mode] if args.proxy_mode else [])]


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


def _remove_proxy_table(url: str, kubeconfig: Path) -> None:
    """The agents' nftables table, when every agent was killed before removing it
    (an agent that stops cleanly removes it as the last one out)."""
    from corral.proxy.hostlock import HostLock
    from corral.proxy.mode import nftables_unavailable, table_name
    from corral.proxy.nftables import delete_table

    if not kubeconfig.exists() or nftables_unavailable() is not None:
        return
    table = table_name(load_kubeconfig(kubeconfig).ca_pem, [url])
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
            for c in (node.get("status") or {}).get("conditions") or []))

    return asyncio.run(count())


def _wait_nodes_ready(kubeconfig: Path, agents: int, procs: list[subprocess.Popen[bytes]],
                      timeout: float = 60.0) -> None:
    """Until every agent's node is Ready, so the first workload is spread over all
    of them instead of landing on whichever registered first."""
    deadline = time.monotonic() + timeout
    while agents and _ready_nodes(kubeconfig) < agents:
        if any(p.poll() is not None for p in procs):
            raise SystemExit("a cluster process exited while starting; see its log")
        if time.monotonic() > deadline:
            print(f"warning: not all {agents} nodes Ready after {timeout:.0f}s", flush=True)
            return
        time.sleep(0.2)


def _run(args: argparse.Namespace) -> int:
    cfg = server_config(args)
    logs = args.data_dir / "logs"
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # Started in the background of a script, SIGINT arrives ignored: Ctrl-C anyway.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        procs.append(_spawn(_master_args(args), logs / "master.log"))
        _wait_ready(cfg.url, procs[0])
        kubeconfig = cfg.kubeconfig_path.resolve()
        token = load_kubeconfig(kubeconfig).token
        nodes = ", ".join(f"node-{i}" for i in range(1, args.agents + 1))
        for index in range(1, args.agents + 1):
            procs.append(_spawn(_agent_args(args, cfg.url, kubeconfig, index),
                                logs / f"node-{index}.log"))
        _wait_nodes_ready(kubeconfig, args.agents, procs)
        print(f"corral is up\n  API:        {cfg.url}\n  kubeconfig: {kubeconfig}\n"
              f"  token:      {token}\n  dashboard:  {dashboard_url(cfg.url)}"
              "   (corral dashboard: a one-time login link)\n"
              f"  logs:       {logs.resolve()}\n"
              f"  agents:     {nodes or 'none'}\n"
              f"  try:        export KUBECONFIG={kubeconfig}; kubectl get all -A\n"
              "Ctrl-C stops the cluster.", flush=True)
        if args.apply:
            _apply(args.apply, kubeconfig)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        dead = [p for p in procs if p.poll() is not None]
        print(f"a cluster process exited (code {dead[0].returncode}); stopping", flush=True)
        return 1
    except KeyboardInterrupt:
        print("stopping the cluster", flush=True)
        return 0
    finally:
        stop_children(procs, grace=AGENT_STOP_GRACE)
        _stop_leftover_pods(args)
        _remove_proxy_table(cfg.url, cfg.kubeconfig_path.resolve())


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="run a local cluster (master + agents) until Ctrl-C")
    add_master_flags(p)
    p.add_argument("--agents", type=int, default=0, help="node agents to start")
    p.add_argument("--apply", action="append", default=[], metavar="PATH",
                   help="manifests to apply once the cluster is up (file or directory)")
    p.add_argument("--proxy-mode", choices=["nftables", "userspace"], default=None,
                   help="the agents' Service data plane (default: nftables where it works)")
    p.set_defaults(run=_run)
