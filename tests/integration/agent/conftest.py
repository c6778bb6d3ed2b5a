"""Fixtures for runtime tests with real processes and real cgroups.

``runtime_root`` gives a fresh state root and, whatever the test did, kills every
shim and container it left and the root's shim launcher (by PID, after checking
the PID is really ours) and removes their cgroups.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.agent.runtime.base import ContainerLaunch
from corral.agent.runtime.cgroups import ContainerCgroup
from corral.agent.runtime.launcher import stop_launcher
from corral.agent.runtime.process import ProcessRuntime, is_shim_process
from corral.agent.runtime.shim import StateDir


def _kill_leftovers(state_root: Path) -> None:
    if state_root.is_dir():
        stop_launcher(state_root)
    pod_groups: dict[str, ContainerCgroup] = {}
    for launch_file in state_root.rglob("launch.json"):
        path = launch_file.parent
        state_dir = StateDir(path)
        shim_pid = state_dir.read_shim_pid()
        if shim_pid is not None and is_shim_process(shim_pid, path):
            os.kill(shim_pid, signal.SIGKILL)
        state = state_dir.read_status()
        if state is not None and state.running and state.pgid:
            try:
                os.killpg(state.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if state_dir.cgroup_file.exists():
            cgroup = state_dir.read_cgroup()
            if cgroup is not None:
                cgroup.kill_and_remove(attempts=50, pause=0.02)
                pod = cgroup.pod_group()
                if pod is not None:
                    pod_groups[pod.dirs[min(pod.dirs)]] = pod
    for pod in pod_groups.values():  # once every container's group is gone
        assert pod.kill_and_remove(attempts=50, pause=0.02), f"pod cgroup {pod.dirs} stays"


@pytest.fixture
def runtime_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "state"
    try:
        yield root
    finally:
        _kill_leftovers(root)


@pytest.fixture
def launch_for(tmp_path: Path) -> LaunchFactory:
    return LaunchFactory(tmp_path)


class LaunchFactory:
    """Builds ContainerLaunch values with a fresh pod uid per test."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pod_uid = uuid.uuid4().hex

    def __call__(self, name: str, command: list[str], **fields: object) -> ContainerLaunch:
        defaults: dict[str, object] = {
            "env": {}, "working_dir": str(self.base / "work" / name),
            "log_dir": str(self.base / "logs" / name),
        }
        return ContainerLaunch(self.pod_uid, name, command, **{**defaults, **fields})  # type: ignore[arg-type]


async def wait_exited(rt: ProcessRuntime, cid: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not rt.exited(cid):
        assert time.monotonic() < deadline, f"{cid} did not exit"
        await asyncio.sleep(0.02)


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """True once pid no longer exists at all (reaped, not a zombie). Orphans are
    reaped by init, which on some machines takes a second or so."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.02)
    return False
