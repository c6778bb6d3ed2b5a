"""Fixtures for runtime tests with real processes and real cgroups.

``runtime_root`` gives a fresh state root and, whatever the test did, kills every
shim and container it left and the root's shim launcher (by PID, after checking
the PID is really ours) and removes their cgroups; ``launch_for`` then removes
its pod's group.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.agent.runtime.base import ContainerLaunch
from corral.agent.runtime.cgroups import detect_isolation
from corral.agent.runtime.process import ProcessRuntime
from tests.cluster import kill_runtime


@pytest.fixture
def runtime_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "state"
    try:
        yield root
    finally:
        kill_runtime(root)


@pytest.fixture
def launch_for(runtime_root: Path, tmp_path: Path) -> Iterator[LaunchFactory]:
    """Its pod's group goes at the end, once everything under ``runtime_root`` is
    killed: kill_runtime finds groups through instances, and a test that removed
    its instances left their pod's group behind."""
    factory = LaunchFactory(tmp_path)
    try:
        yield factory
    finally:
        kill_runtime(runtime_root)
        system, _ = detect_isolation()
        if system is not None:
            pod = system.for_pod(factory.pod_uid)
            assert pod.kill_and_remove(attempts=50, pause=0.02), f"{pod.dirs} stays"


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


async def wait_exited(rt: ProcessRuntime, cid: str, timeout: float = 60.0) -> None:
    # A bound, not a wait: on a loaded machine the shim's kill of leftovers, its
    # drain of the pipes and the cgroup's removal come before the exit is written.
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
