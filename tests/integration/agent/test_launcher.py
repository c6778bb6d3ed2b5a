"""The shim launcher with real processes: forked shims, one launcher per state
root, independence of shims from the launcher, stale sockets, linger, fallback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from corral.agent.runtime.launcher import (
    EXECUTORS_DIR,
    LAUNCHER_MODULE,
    SOCKET_NAME,
    running_launcher,
    socket_path,
    stop_launcher,
)
from corral.agent.runtime.process import ProcessRuntime, is_shim_process
from corral.agent.runtime.shim import SHIM_MODULE, SHIM_NAME, StateDir
from tests.integration.agent.conftest import LaunchFactory, wait_exited, wait_gone
from tests.poll import eventually, wait_for


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


async def _ask(path: Path, request: dict[str, object]) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        return dict(json.loads(await reader.readline()))
    finally:
        writer.close()


async def test_shims_are_forked_by_the_launcher(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    state = await rt.start(launch_for("forked", ["sleep", "60"]))
    launcher = running_launcher(runtime_root)
    assert launcher is not None and state.shim_pid is not None
    assert _comm(state.shim_pid) == SHIM_NAME and _comm(launcher) == "corral-launcher"
    assert LAUNCHER_MODULE.encode() in _cmdline(state.shim_pid)  # a fork, no exec
    assert is_shim_process(state.shim_pid, runtime_root / state.container_id)
    assert not is_shim_process(launcher, runtime_root / state.container_id)
    stopped = await rt.stop(state.container_id, grace_seconds=5)
    assert stopped.signal == signal.SIGTERM and wait_gone(state.pid or 0)


async def test_a_dead_launcher_leaves_shims_running_and_is_replaced(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    first = await rt.start(launch_for("first", ["sleep", "60"]))
    old_launcher = running_launcher(runtime_root)
    assert old_launcher is not None
    assert stop_launcher(runtime_root) == old_launcher  # SIGKILL: the socket file stays, stale
    assert socket_path(runtime_root).exists()
    assert (await rt.status(first.container_id)).running
    assert first.shim_pid is not None and is_shim_process(first.shim_pid,
                                                          runtime_root / first.container_id)

    second = await rt.start(launch_for("second", ["sleep", "60"]))
    assert second.running and second.shim_pid is not None
    new_launcher = running_launcher(runtime_root)
    assert new_launcher not in (None, old_launcher)
    assert _comm(second.shim_pid) == SHIM_NAME

    for state in (first, second):  # the orphaned shim still obeys stop
        stopped = await rt.stop(state.container_id, grace_seconds=5)
        assert stopped.signal == signal.SIGTERM and wait_gone(state.pid or 0)


async def test_a_restarted_runtime_reuses_the_live_launcher(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    first_rt = ProcessRuntime(runtime_root)
    brief = await first_rt.start(launch_for("one", ["true"]))
    launcher = running_launcher(runtime_root)
    first_rt.launcher.close()  # the agent goes away

    rt = ProcessRuntime(runtime_root)
    await rt.adopt()
    again = await rt.start(launch_for("two", ["true"]))
    assert running_launcher(runtime_root) == launcher
    for state in (brief, again):
        await wait_exited(rt, state.container_id)
        assert (await rt.status(state.container_id)).reason == "Completed"


async def test_launcher_refuses_what_is_not_an_instance_of_its_root(
    runtime_root: Path, launch_for: LaunchFactory, tmp_path: Path,
) -> None:
    rt = ProcessRuntime(runtime_root)
    await rt.start(launch_for("ok", ["true"]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    reply = await _ask(socket_path(runtime_root), {"id": 7, "start": str(elsewhere)})
    assert reply["id"] == 7 and reply["ok"] is False
    assert "not an instance" in str(reply["error"])
    reply = await _ask(socket_path(runtime_root), {"begin": "x"})
    assert reply == {"id": None, "ok": False, "error": "bad request"}
    # An executor only from an Alloc's state dir (under allocs/, with its alloc.json).
    for path in (elsewhere, runtime_root / EXECUTORS_DIR / "no-such-alloc"):
        reply = await _ask(socket_path(runtime_root), {"id": 8, "executor": str(path)})
        assert reply["ok"] is False and "not an instance" in str(reply["error"])


async def test_a_second_launch_of_one_instance_starts_no_second_shim(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    state = await rt.start(launch_for("once", ["sleep", "60"]))
    state_dir = StateDir(runtime_root / state.container_id)
    assert await rt.launcher.launch(state_dir.path)  # e.g. a retried request
    await eventually(lambda: "another shim supervises" in state_dir.log_file.read_text(),
                     timeout=10, what="the second shim to stand down")
    assert state_dir.read_shim_pid() == state.shim_pid
    assert (await rt.status(state.container_id)).pid == state.pid
    await rt.stop(state.container_id, grace_seconds=5)


def test_launcher_exits_after_its_linger_without_clients(runtime_root: Path) -> None:
    """Once no client has been connected for its linger, the launcher exits and
    removes its socket. The spawn returns once the socket listens, before the
    daemon has written its pid (and a loaded machine may take longer than a short
    linger to get there): a client holds it alive while the test reads the pid."""
    runtime_root.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", LAUNCHER_MODULE, str(runtime_root), "3"],
                   cwd="/", timeout=30, check=True)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(runtime_root / SOCKET_NAME))
        pid = wait_for(lambda: running_launcher(runtime_root), timeout=30,
                       what="the launcher's pid file")
    finally:
        client.close()
    wait_for(lambda: running_launcher(runtime_root) != pid, timeout=30,
             what="the launcher to exit after its linger")
    assert not (runtime_root / SOCKET_NAME).exists()  # it removed its own socket


def test_a_second_launcher_for_one_root_exits_at_once(runtime_root: Path) -> None:
    runtime_root.mkdir(parents=True)
    command = [sys.executable, "-m", LAUNCHER_MODULE, str(runtime_root)]
    subprocess.run(command, cwd="/", timeout=30, check=True)
    first = running_launcher(runtime_root)
    subprocess.run(command, cwd="/", timeout=30, check=True)
    assert first is not None and running_launcher(runtime_root) == first


async def test_too_long_a_socket_path_falls_back_to_a_fresh_interpreter(
    tmp_path: Path, launch_for: LaunchFactory,
) -> None:
    root = tmp_path / ("x" * 60) / ("y" * 60) / "state"
    rt = ProcessRuntime(root)
    assert not rt.launcher.usable
    state = await rt.start(launch_for("fresh", ["sleep", "60"]))
    try:
        assert state.running and state.shim_pid is not None
        assert SHIM_MODULE.encode() in _cmdline(state.shim_pid)
        assert is_shim_process(state.shim_pid, root / state.container_id)
        assert running_launcher(root) is None
    finally:
        stopped = await rt.stop(state.container_id, grace_seconds=5)
    assert stopped.signal == signal.SIGTERM and wait_gone(state.pid or 0)
    assert not os.path.exists(root / SOCKET_NAME)


async def test_the_answer_comes_once_the_first_status_is_written(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    launches = [launch_for("runs", ["sleep", "60"]),
                launch_for("missing", ["no-such-command-corral"])]
    reasons = []
    for launch in launches:
        state_dir = StateDir(runtime_root / launch.container_id)
        state_dir.path.mkdir(parents=True)
        state_dir.cgroup_file.write_text("null")
        state_dir.launch_file.write_text(launch.to_json())
        assert await rt.launcher.launch(state_dir.path)
        state = state_dir.read_status()  # no waiting: it is there
        assert state is not None
        reasons.append(state.reason)
    assert reasons == [None, "StartError"]
    stopped = await rt.stop(launches[0].container_id, grace_seconds=5)
    assert stopped.signal == signal.SIGTERM


async def test_a_shim_that_dies_early_still_gets_an_answer(runtime_root: Path) -> None:
    rt = ProcessRuntime(runtime_root)
    state_dir = StateDir(runtime_root / "broken")
    state_dir.path.mkdir(parents=True)
    state_dir.launch_file.write_text("{not json")
    assert await rt.launcher.launch(state_dir.path)
    assert state_dir.read_status() is None
    assert "JSONDecodeError" in state_dir.log_file.read_text()
