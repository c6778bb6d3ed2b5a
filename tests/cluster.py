"""The one harness that starts real corral processes for tests, and stops them by PID."""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from corral.cli.local_etcd import EtcdMember, LocalEtcd
from corral.port_probe import bind_error
from tests import poll
from tests.netns import prefix as netns_prefix

T = TypeVar("T")

wait_for = poll.wait_for  # the one poll helper (tests/poll.py), also reachable from here


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive free ports, for a program that listens on
    a port and the ones after it (`corral up`'s masters). Taken below the kernel's
    ephemeral range, where no client connection can occupy one before the program
    binds it, and below etcd's standard ports of a fourth member (32379)."""
    for _ in range(200):
        base = random.randrange(30000, 32300 - count)
        if all(bind_error(host, port) is None for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports in 30000-32300")


def stop_on_sigterm() -> None:
    """Scripts that start clusters (bench/) tear them down on SIGTERM as on Ctrl-C:
    the signal raises SystemExit, so the finally blocks that stop processes run;
    and at exit the agents' state dirs relocated under NODE_HOMES go too (what
    tests/conftest.py does at the end of a test session)."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    atexit.register(remove_node_homes)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, wait ``grace``, then SIGKILL it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers in the group, if any
    except ProcessLookupError:
        pass
    proc.wait()


class CorralProcess:
    """What every harnessed corral process has: a ``corral`` child in its own
    process group, its log file, and stop (SIGTERM, then SIGKILL) / kill (crash)."""

    proc: subprocess.Popen[bytes] | None
    log_path: Path
    netns: str | None  # a network namespace the test made (`nsenter --net` runs it there)

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # (found now: ``env`` may have another PATH)
        inside = netns_prefix(self.netns) if self.netns else []
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([*inside, sys.executable, "-m", "corral.cli.main",
                                          *args], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@dataclass
class Master(CorralProcess):
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    name: str = "master"  # several masters may share one data dir (and its CA)
    netns: str | None = None
    env: dict[str, str] | None = None  # the master's environment (default: the test's)

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def token(self) -> str:
        import yaml

        cfg = yaml.safe_load(self.kubeconfig.read_text())
        return str(cfg["users"][0]["user"]["token"])

    @property
    def ca_path(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    @property
    def ca_pem(self) -> bytes:
        return self.ca_path.read_bytes()

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def start(self, timeout: float = 30.0, wait_ready: bool = True) -> Master:
        """Spawn the master and wait until it is ready (``wait_ready=False``: the
        caller calls wait_ready(), e.g. after spawning several)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spawn(["master", "--data-dir", str(self.data_dir),
                    "--listen", f"{self.host}:{self.port}", *self.extra_args], env=self.env)
        if not wait_ready:
            return self
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()  # a master that never got ready is not left behind
            raise
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"master exited {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(f"{self.url}/readyz", verify=False, timeout=1.0)
                if r.status_code == 200 and self.kubeconfig.exists():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"master not ready after {timeout}s:\n{self.log()}")

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=str(self.ca_path),
                            headers={"Authorization": f"Bearer {self.token}"}, timeout=30.0)

    def agent_port(self, node: str) -> int:
        """The port of ``node``'s agent server, as its Node shows it."""
        with self.http() as http:
            status = http.get(f"/api/v1/nodes/{node}").json()["status"]
        return int(status["daemonEndpoints"]["kubeletEndpoint"]["Port"])

    def agent_tls(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        """A TLS context for calling an agent's server directly: the cluster CA trusted
        (the node's certificate names the node, not the address), ``cert`` shown."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        context.check_hostname = False
        if cert is not None and key is not None:
            context.load_cert_chain(cert, key)
        return context

    def as_master_to_agents(self) -> ssl.SSLContext:
        """agent_tls showing the master's own client certificate toward agents."""
        pki = self.data_dir / "pki"
        return self.agent_tls(pki / "apiserver-kubelet-client.crt",
                              pki / "apiserver-kubelet-client.key")


def kill_executors(runtime_dir: Path) -> None:
    """Kill every Alloc executor under ``runtime_dir`` (by PID, checked) and its
    tasks (its whole cgroup, or the process groups it recorded)."""
    from corral.agent.runtime.executors import ExecutorRuntime

    if not (runtime_dir / "allocs").exists():
        return
    executors = ExecutorRuntime(runtime_dir, None)
    for uid in executors.known():
        assert executors.kill(uid, attempts=100), f"the cgroup of Alloc {uid} stays busy"


def kill_pods(state_dir: Path) -> None:
    """Kill every shim and container an agent left under ``state_dir`` (by PID,
    after checking the PID is really that shim), its shim launcher and its Alloc
    executors, and remove their cgroups, then the agent's own parent group."""
    runtime_dir = state_dir / "runtime"
    if runtime_dir.exists():
        kill_executors(runtime_dir)
    kill_runtime(runtime_dir)
    remove_agent_groups(state_dir)


def remove_agent_groups(state_dir: Path) -> None:
    """The parent group of the agent of ``state_dir`` (corral/<node>-<tag>, found
    by the tag of its state dir) in every hierarchy, with whatever is still in it:
    it is that agent's alone."""
    from corral.agent.runtime.cgroups import ContainerCgroup, parse_mountinfo, state_tag

    v2, v1 = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    for mount in {*v1.values(), *([v2] if v2 else [])}:
        host = Path(mount, "corral")
        for parent in host.glob(f"*-{state_tag(state_dir)}") if host.is_dir() else ():
            groups = [p for p in parent.rglob("*") if p.is_dir()] + [parent]
            for group in sorted(groups, key=lambda p: len(p.parts), reverse=True):
                assert ContainerCgroup(1, {"group": str(group)}).kill_and_remove(
                    attempts=50, pause=0.02), f"cgroup {group} stays"


def kill_runtime(root: Path) -> None:
    """Kill the shim launcher of the runtime state root ``root`` and every shim
    and container under it (by PID, after checking the PID is really that shim),
    and remove their cgroups, the pods' groups last."""
    from corral.agent.runtime.cgroups import ContainerCgroup
    from corral.agent.runtime.launcher import stop_launcher
    from corral.agent.runtime.process import is_shim_process
    from corral.agent.runtime.shim import StateDir

    if not root.is_dir():
        return
    stop_launcher(root)
    pod_groups: dict[str, ContainerCgroup] = {}
    for launch_file in root.rglob("launch.json"):
        instance = StateDir(launch_file.parent)
        shim_pid = instance.read_shim_pid()
        if shim_pid is not None and is_shim_process(shim_pid, instance.path):
            os.kill(shim_pid, signal.SIGKILL)
        state = instance.read_status()
        if state is not None and state.running and state.pgid:
            try:
                os.killpg(state.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        cgroup = instance.read_cgroup() if instance.cgroup_file.exists() else None
        if cgroup is not None:
            cgroup.kill_and_remove(attempts=50, pause=0.02)
            pod = cgroup.pod_group()
            if pod is not None:
                pod_groups[pod.dirs[min(pod.dirs)]] = pod
    for pod in pod_groups.values():  # once every container's group is gone
        assert pod.kill_and_remove(attempts=50, pause=0.02), f"pod cgroup {pod.dirs} stays"


# Where agents' state dirs really live when the test asked for one under pytest's
# 0700 temp root (see node_home); removed at the end of the session.
NODE_HOMES = Path(tempfile.gettempdir()) / "corral-test-nodes"
_relocated: list[Path] = []


def _searchable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in path.parents if p.exists())


def node_home(state_dir: Path) -> Path:
    """The real directory for an agent's state dir. A node's state dir lives where
    every user may pass through (/var/lib): pods run as the node's pod user
    (corral-pod) and reach their sandbox, volumes and resolv.conf by path. pytest's
    temp dirs are 0700 (and pytest sets its root back to 0700 whenever a session
    starts), so such a state dir is made under NODE_HOMES (search-only) instead,
    with a symlink where the test asked for it, so paths built from either work."""
    if state_dir.is_symlink():
        real = state_dir.resolve()
        real.mkdir(parents=True, exist_ok=True)
        return real
    if state_dir.exists() or _searchable(state_dir):
        return state_dir
    NODE_HOMES.mkdir(mode=0o711, exist_ok=True)
    os.chmod(NODE_HOMES, 0o711)
    home = Path(tempfile.mkdtemp(prefix="node-", dir=NODE_HOMES))
    os.chmod(home, 0o711)
    _relocated.append(home)
    real = home / state_dir.name
    real.mkdir()
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    state_dir.symlink_to(real, target_is_directory=True)
    return real


def remove_node_homes() -> None:
    """At the end of the session (tests/conftest.py): every relocated state dir."""
    while _relocated:
        shutil.rmtree(_relocated.pop(), ignore_errors=True)


@dataclass
class Agent(CorralProcess):
    """A real `corral agent` process for ``master``; pods outlive stop() and kill()
    (as they do in production), so ``cleanup()`` kills what it ran.

    Outside a namespace of the test's own, agents run the user-space proxy unless
    told otherwise: the host's namespace is shared by every test run on the
    machine, and nftables tests run in namespaces they create (tests/netns.py)."""

    master: Master
    name: str
    state_dir: Path
    node_ip: str = "127.0.0.1"
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    netns: str | None = None
    env: dict[str, str] | None = None  # the agent's environment (default: the test's)
    servers: list[str] = field(default_factory=list)  # several masters (default: master's)

    def __post_init__(self) -> None:
        self.state_dir = node_home(self.state_dir)

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0, wait_registered: bool = True) -> Agent:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        mode = ([] if self.netns or "--proxy-mode" in self.extra_args
                else ["--proxy-mode", "userspace"])
        # An agent given a credential (or a bootstrap token) uses that one.
        own = [] if {"--bootstrap-kubeconfig", "--kubeconfig"} & set(self.extra_args) else [
            "--kubeconfig", str(self.credential())]
        self.spawn(["agent", "--server", ",".join(self.servers or [self.master.url]),
                    "--name", self.name, *own, "--node-ip", self.node_ip,
                    "--state-dir", str(self.state_dir), "--heartbeat", "0.5",
                    "--backoff-initial", "1", "--backoff-cap", "8", *mode, *self.extra_args],
                   env=self.env)
        if wait_registered:
            self.wait_registered(timeout)
        return self

    def credential(self) -> Path:
        """A kubeconfig with the node's own token (system:node:<name> in
        system:nodes), as `corral up` gives its agents: never the admin's."""
        from corral.api.auth import User
        from corral.api.token_store import replace_token
        from corral.client.kubeconfig import write_kubeconfig

        path = self.state_dir.parent / f"{self.name}.kubeconfig"
        if not path.exists():
            token = replace_token(self.master.data_dir, User(
                f"system:node:{self.name}", self.name, ("system:nodes",)))
            write_kubeconfig(path, self.master.url, self.master.ca_pem, token)
        return path

    def wait_registered(self, timeout: float = 30.0) -> None:
        """Until the Node shows this agent's pid (a restarted agent re-registers)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with self.master.http() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"agent exited {self.proc.returncode}:\n{self.log()}")
                r = http.get(f"/api/v1/nodes/{self.name}")
                if r.status_code == 200:
                    node = r.json()
                    pid = node["metadata"].get("annotations", {}).get("corral.dev/agent-pid")
                    if pid == str(self.proc.pid) and node.get("status", {}).get("conditions"):
                        return
                time.sleep(0.05)
        raise RuntimeError(f"agent {self.name} not registered after {timeout}s:\n{self.log()}")

    def cleanup(self) -> None:
        self.stop()
        kill_pods(self.state_dir)



def start_agents(agents: list[Agent], timeout: float = 30.0) -> list[Agent]:
    """Start several agents at once: all are spawned, then each is awaited until
    registered, so their starts (imports, certificates, registration) overlap
    rather than queue. The caller holds them for cleanup() as it would one by one."""
    for agent in agents:
        agent.start(wait_registered=False)
    for agent in agents:
        agent.wait_registered(timeout)
    return agents

class EtcdCluster:
    """A real etcd cluster of ``size`` members on free loopback ports under ``base``
    (corral's own local-cluster layout, corral.cli.local_etcd), each member a
    child process stopped by PID."""

    def __init__(self, base: Path, size: int = 1) -> None:
        self.local = LocalEtcd.load_or_create(base, size, prefer_standard=False)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """The store URL every member is in: etcd://h:p,h:p,..."""
        return self.local.store_url

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.local.members]

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        for member in self.local.members:
            self.start_member(member.name)
        self.wait_healthy(timeout)
        return self

    def start_member(self, name: str) -> None:
        member = self._member(name)
        self.procs[name] = self.local.spawn(member, self.local.base / f"{name}.log")

    def wait_healthy(self, timeout: float = 30.0, names: list[str] | None = None) -> None:
        """Until each member (default: each running one) answers /health true."""
        deadline = time.monotonic() + timeout
        pending = list(names or self.procs)
        while pending:
            name = pending[0]
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"etcd {name} exited {proc.returncode}:\n{self.log(name)}")
            try:
                r = httpx.get(f"{self._member(name).client_url}/health", timeout=1.0)
                if r.status_code == 200 and r.json().get("health") == "true":
                    pending.pop(0)
                    continue
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd {name} not healthy after {timeout}s:\n{self.log(name)}")
            time.sleep(0.05)

    def leader(self) -> str:
        """The name of the member that is the raft leader now."""
        ids: dict[int, str] = {}
        leader_id = 0
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                continue
            try:
                r = httpx.post(f"{self._member(name).client_url}/v3/maintenance/status",
                               json={}, timeout=2.0)
                status = r.json()
            except (httpx.HTTPError, ValueError):
                continue
            ids[int(status["header"]["member_id"])] = name
            leader_id = int(status.get("leader") or leader_id)
        if leader_id not in ids:
            raise RuntimeError("no etcd member reports a leader it can name")
        return ids[leader_id]

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def kill(self, name: str) -> None:
        """SIGKILL one member, as a crash."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            stop_process(proc)
        self.procs.clear()

    def log(self, name: str) -> str:
        path = self.local.base / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _member(self, name: str) -> EtcdMember:
        return next(m for m in self.local.members if m.name == name)


@dataclass
class Component(CorralProcess):
    """Another `corral` component process (scheduler, controllers) for ``master``,
    started as ``corral <command> --kubeconfig <master's, or its own> <args>``."""

    master: Master
    command: str
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    netns: str | None = None
    kubeconfig: Path | None = None  # default: the master's admin kubeconfig

    @property
    def log_path(self) -> Path:
        return self.master.data_dir / f"{self.command}-{id(self)}.log"

    def start(self) -> Component:
        kubeconfig = self.kubeconfig or self.master.kubeconfig
        self.spawn([self.command, "--kubeconfig", str(kubeconfig), *self.args])
        return self
