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


@dataclass
class Master:
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
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "corral.cli.main", "master", "--data-dir", str(self.data_dir),
             "--listen", f"{self.host}:{self.port}", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
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

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

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

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=str(self.ca_path),
                            headers={"Authorization": f"Bearer {self.token}"}, timeout=30.0)
