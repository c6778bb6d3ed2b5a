"""The one harness that starts real corral processes for tests, and stops them by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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

    def spawn(self, args: list[str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "corral.cli.main", *args],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

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
        return self.data_dir / "master.log"

    def start(self, timeout: float = 30.0) -> Master:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spawn(["master", "--data-dir", str(self.data_dir),
                    "--listen", f"{self.host}:{self.port}", *self.extra_args])
        self.wait_ready(timeout)
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


def kill_pods(state_dir: Path) -> None:
    """Kill every shim and container an agent left under ``state_dir`` (by PID,
    after checking the PID is really that shim), its shim launcher, and remove
    their cgroups."""
    from corral.agent.runtime.launcher import stop_launcher
    from corral.agent.runtime.process import is_shim_process
    from corral.agent.runtime.shim import StateDir

    runtime_dir = state_dir / "runtime"
    if runtime_dir.exists():
        stop_launcher(runtime_dir)
    for launch_file in runtime_dir.glob("*/launch.json") if runtime_dir.exists() else []:
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
        for _ in range(50 if cgroup is not None else 0):
            assert cgroup is not None
            cgroup.kill_all()
            if cgroup.remove():
                break
            time.sleep(0.02)


@dataclass
class Agent(CorralProcess):
    """A real `corral agent` process for ``master``; pods outlive stop() and kill()
    (as they do in production), so ``cleanup()`` kills what it ran."""

    master: Master
    name: str
    state_dir: Path
    node_ip: str = "127.0.0.1"
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0, wait_registered: bool = True) -> Agent:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.spawn(["agent", "--server", self.master.url, "--name", self.name,
                    "--kubeconfig", str(self.master.kubeconfig), "--node-ip", self.node_ip,
                    "--state-dir", str(self.state_dir), "--heartbeat", "0.5",
                    "--backoff-initial", "1", "--backoff-cap", "8", *self.extra_args])
        if wait_registered:
            self.wait_registered(timeout)
        return self

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


@dataclass
class Component(CorralProcess):
    """Another `corral` component process (scheduler, controllers) for ``master``,
    started as ``corral <command> --kubeconfig <master's> <args>``."""

    master: Master
    command: str
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.master.data_dir / f"{self.command}-{id(self)}.log"

    def start(self) -> Component:
        self.spawn([self.command, "--kubeconfig", str(self.master.kubeconfig), *self.args])
        return self
