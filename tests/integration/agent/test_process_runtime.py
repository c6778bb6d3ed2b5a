"""ProcessRuntime with real processes: exits, start errors, stop with grace,
adoption after the agent goes away, leftovers, logs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from corral.agent.runtime.base import RunPhase
from corral.agent.runtime.logs import LogFiles
from corral.agent.runtime.process import ProcessRuntime, is_shim_process
from corral.agent.runtime.shim import StateDir
from tests.integration.agent.conftest import LaunchFactory, wait_exited, wait_gone
from tests.poll import eventually


async def test_exit_codes_and_reasons(runtime_root: Path, launch_for: LaunchFactory) -> None:
    rt = ProcessRuntime(runtime_root)
    ok = await rt.start(launch_for("ok", ["sh", "-c", "exit 0"]))
    bad = await rt.start(launch_for("bad", ["sh", "-c", "exit 1"]))
    for cid in (ok.container_id, bad.container_id):
        await wait_exited(rt, cid)
    ok, bad = await rt.status(ok.container_id), await rt.status(bad.container_id)
    assert (ok.exit_code, ok.reason, ok.signal) == (0, "Completed", None)
    assert (bad.exit_code, bad.reason) == (1, "Error")
    assert ok.started_at is not None and ok.finished_at is not None
    assert ok.finished_at >= ok.started_at
    assert wait_gone(ok.pid or 0) and wait_gone(ok.shim_pid or 0)


async def test_command_not_found_is_a_start_error(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    state = await rt.start(launch_for("missing", ["no-such-command-corral"]))
    assert state.phase is RunPhase.EXITED
    assert state.reason == "StartError" and state.exit_code == 128
    assert state.message == 'exec: "no-such-command-corral": executable file not found in $PATH'
    state = await rt.start(launch_for("empty", []))
    assert state.reason == "StartError"


async def test_env_and_working_dir(runtime_root: Path, launch_for: LaunchFactory) -> None:
    rt = ProcessRuntime(runtime_root)
    launch = launch_for("env", ["sh", "-c", 'echo "$GREETING from $(pwd)"'],
                        env={"GREETING": "hello"})
    state = await rt.start(launch)
    await wait_exited(rt, state.container_id)
    assert LogFiles(launch.log_dir).read(0) == [f"hello from {launch.working_dir}"]


async def test_stop_sends_sigterm_then_sigkill_after_grace(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    polite = await rt.start(launch_for("polite", ["sleep", "60"]))
    stubborn_launch = launch_for("stubborn", [
        "sh", "-c", "trap 'echo got TERM' TERM; echo trapped; while :; do sleep 0.05; done"])
    stubborn = await rt.start(stubborn_launch)
    log = Path(stubborn_launch.log_dir) / "0.log"
    await eventually(lambda: log.exists() and "trapped" in log.read_text(), timeout=10,
                     what="the shell's TERM trap")

    stopped = await rt.stop(polite.container_id, grace_seconds=5)
    assert (stopped.signal, stopped.exit_code, stopped.reason) == (signal.SIGTERM, 143, "Error")

    began = time.monotonic()
    stopped = await rt.stop(stubborn.container_id, grace_seconds=1.0)
    assert time.monotonic() - began >= 1.0  # the grace was honoured, not cut short
    assert stopped.signal == signal.SIGKILL and stopped.exit_code == 137
    assert "got TERM" in LogFiles(launch_for("stubborn", []).log_dir).read(0)
    for state in (polite, stubborn):
        assert wait_gone(state.pid or 0), "container left a zombie or kept running"


async def test_leftover_processes_die_with_the_main_one(
    runtime_root: Path, launch_for: LaunchFactory, tmp_path: Path,
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    rt = ProcessRuntime(runtime_root)
    # The grandchild escapes the process group; the cgroup still holds it.
    script = f"setsid sleep 60 & echo $! > {pid_file}; sleep 0.3"
    state = await rt.start(launch_for("parent", ["sh", "-c", script]))
    await wait_exited(rt, state.container_id)
    grandchild = int(pid_file.read_text())
    assert wait_gone(grandchild)


async def test_shim_outlives_the_agent_and_is_adopted(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    launch = launch_for("long", ["sleep", "60"])
    # The "agent" is a separate process that starts the container and is killed -9.
    agent = (
        "import asyncio, os, sys\n"
        "from corral.agent.runtime.base import ContainerLaunch\n"
        "from corral.agent.runtime.process import ProcessRuntime\n"
        "async def main():\n"
        f"    rt = ProcessRuntime({str(runtime_root)!r})\n"
        f"    s = await rt.start(ContainerLaunch.from_json({launch.to_json()!r}))\n"
        "    print(s.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", agent, stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[3])
    try:
        assert proc.stdout is not None
        pid = int(await proc.stdout.readline())
    finally:
        proc.kill()  # the agent dies hard; its shim must not notice
        await proc.wait()

    rt = ProcessRuntime(runtime_root)
    adopted = {s.container_id: s for s in await rt.adopt()}
    state = adopted[launch.container_id]
    assert state.running and state.pid == pid
    assert Path(f"/proc/{pid}").exists()
    again = await rt.start(launch)  # the restarted agent's worker converges again
    assert again.pid == pid and len(await rt.list()) == 1

    stopped = await rt.stop(launch.container_id, grace_seconds=5)
    assert stopped.signal == signal.SIGTERM
    assert wait_gone(pid)


async def test_dead_shim_is_settled_on_adopt(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    state = await rt.start(launch_for("orphan", ["sleep", "60"]))
    assert state.shim_pid is not None
    state_dir = StateDir(runtime_root / state.container_id)
    assert is_shim_process(state.shim_pid, state_dir.path)
    os.kill(state.shim_pid, signal.SIGKILL)
    assert wait_gone(state.shim_pid)

    settled = {s.container_id: s for s in await ProcessRuntime(runtime_root).adopt()}
    lost = settled[state.container_id]
    assert not lost.running and lost.reason == "Error" and "shim" in (lost.message or "")
    assert wait_gone(state.pid or 0), "an unsupervised container was left running"


async def test_remove_forgets_an_exited_instance(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    state = await rt.start(launch_for("brief", ["true"]))
    await wait_exited(rt, state.container_id)
    await rt.remove(state.container_id)
    assert await rt.list() == []


async def test_logs_rotate_and_follow_sees_new_lines(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root)
    script = "i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); sleep 0.02; done"
    launch = launch_for("chatty", ["sh", "-c", script], log_max_bytes=600, log_max_files=3)
    state = await rt.start(launch)
    files = LogFiles(launch.log_dir)
    seen = [line async for line in files.follow(
        0, tail=0, finished=lambda: rt.exited(state.container_id), poll_seconds=0.02)]
    # Follow started right away, so it saw (nearly) all lines as they came, in order.
    numbers = [int(line.split("-")[1]) for line in seen]
    assert numbers == sorted(numbers) and numbers[-1] == 59 and len(numbers) >= 50
    rotated = sorted(p.name for p in Path(launch.log_dir).iterdir())
    assert rotated == ["0.log", "0.log.1", "0.log.2"]  # older ones were dropped
    kept = files.read(0)
    assert kept[-1] == "line-59" and len(kept) < 60
    assert all(p.stat().st_size <= 600 for p in Path(launch.log_dir).iterdir())


async def test_previous_instance_logs(runtime_root: Path, launch_for: LaunchFactory) -> None:
    rt = ProcessRuntime(runtime_root)
    for attempt in range(3):
        launch = launch_for("restarts", ["echo", f"run {attempt}"], attempt=attempt)
        state = await rt.start(launch)
        await wait_exited(rt, state.container_id)
    files = LogFiles(launch.log_dir)
    assert files.attempts() == [1, 2]  # starting attempt 2 pruned attempt 0
    assert files.read(files.instance() or 0) == ["run 2"]
    assert files.read(files.instance(previous=True) or 0) == ["run 1"]
