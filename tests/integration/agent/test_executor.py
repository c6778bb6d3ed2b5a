"""The Alloc executor with real processes: tasks started by posix_spawn, exits
streamed, unacknowledged exits replayed to the next connection (an agent
restart), output tagged per task in one bounded log, silent tasks writing nothing,
kill and stop."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.agent.runtime.base import RunAs
from corral.agent.runtime.executor import EXECUTOR_MODULE, EXECUTOR_NAME, ExecutorConfig
from corral.agent.runtime.executors import ExecutorConnection, ExecutorRuntime, TaskExit
from corral.agent.runtime.launcher import LAUNCHER_MODULE, running_launcher
from corral.agent.runtime.logs import LogFiles
from corral.agent.runtime.process import ProcessRuntime
from tests.cluster import kill_executors, kill_runtime
from tests.poll import eventually


@pytest.fixture
def executors(tmp_path: Path) -> Iterator[ExecutorRuntime]:
    """As the agent has them: the node runtime's cgroups (when this machine offers
    them) and its launcher, which forks the executors."""
    runtime_dir = tmp_path / "runtime"
    runtime = ProcessRuntime(runtime_dir, "corral-test")
    try:
        yield ExecutorRuntime(runtime_dir, runtime.cgroups, launcher=runtime.launcher)
    finally:
        kill_executors(runtime_dir)
        kill_runtime(runtime_dir)


async def started(executors: ExecutorRuntime, slots: int = 4,
                  log_max_bytes: int = 1 << 20) -> tuple[str, ExecutorConnection]:
    uid = str(uuid.uuid4())
    adopted = await executors.ensure(ExecutorConfig(uid, "default", "a", slots=slots,
                                                    log_max_bytes=log_max_bytes))
    assert not adopted
    return uid, await executors.connect(uid)


async def collect(conn: ExecutorConnection, count: int) -> list[TaskExit]:
    got: list[TaskExit] = []
    while len(got) < count:
        batch = await asyncio.wait_for(conn.exits(), 30)
        assert batch, "the executor went away"
        got.extend(batch)
    return got


async def test_tasks_run_and_report_exit_codes(executors: ExecutorRuntime,
                                               tmp_path: Path) -> None:
    uid, conn = await started(executors)
    out = tmp_path / "out"
    for i in range(200):
        conn.launch(str(i), ["sh", "-c", f'echo "$X" >> {out}; exit $(( $X % 7 == 3 ))'],
                    {"X": str(i)})
    conn.launch("bad", ["no-such-program-here"], {})
    exits = {e.id: e for e in await collect(conn, 201)}
    assert sorted(int(line) for line in out.read_text().split()) == list(range(200))
    assert {i for i, e in exits.items() if e.code == 1} == {str(i) for i in range(200)
                                                            if i % 7 == 3}
    assert exits["bad"].reason == "StartError" and exits["bad"].code == 128
    assert "executable file not found" in exits["bad"].message
    conn.close()
    # Nothing printed but the start error: the task log holds exactly that line.
    files = LogFiles(executors.dir(uid).task_logs)
    assert files.attempts() == [0]
    assert files.read(0, stream="bad") == [('exec: "no-such-program-here": executable file '
                                           'not found in $PATH')]
    assert files.read(0, stream="3") == []


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


async def test_unacknowledged_exits_are_replayed_to_a_new_connection(
        executors: ExecutorRuntime) -> None:
    uid, conn = await started(executors)
    # Forked by the node's launcher (no interpreter of its own), in a session
    # of its own: the launcher lives on, or goes, without it.
    launcher = running_launcher(executors.root.parent)
    assert launcher is not None and conn.pid != launcher
    assert Path(f"/proc/{conn.pid}/comm").read_text().strip() == EXECUTOR_NAME
    assert LAUNCHER_MODULE.encode() in _cmdline(conn.pid)
    assert os.getsid(conn.pid) == conn.pid != os.getsid(launcher)
    for i in range(6):
        conn.launch(str(i), ["true"], {})
    first = await collect(conn, 6)
    conn.ack(sorted(e.seq for e in first)[2])
    await conn.drain()
    conn.close()  # the agent dies before recording the last three
    assert await executors.ensure(ExecutorConfig(uid, "default", "a")) is True  # adopted
    again = await executors.connect(uid)
    replayed = await collect(again, 3)
    assert [e.seq for e in replayed] == sorted(e.seq for e in first)[-3:]
    again.close()


async def test_a_fresh_interpreter_runs_it_where_the_launcher_cannot(tmp_path: Path) -> None:
    """A runtime dir too deep for the launcher's socket: ``python -m`` of the
    executor, as before there was a launcher to fork it."""
    runtime_dir = tmp_path / ("d" * 100) / "runtime"
    runtime = ProcessRuntime(runtime_dir, "corral-test")
    assert not runtime.launcher.usable
    executors = ExecutorRuntime(runtime_dir, None, launcher=runtime.launcher)
    try:
        _, conn = await started(executors)
        assert EXECUTOR_MODULE.encode() in _cmdline(conn.pid)
        conn.launch("t", ["true"], {})
        (done,) = await collect(conn, 1)
        assert (done.id, done.code) == ("t", 0)
        conn.close()
    finally:
        kill_executors(runtime_dir)
        kill_runtime(runtime_dir)


async def test_output_is_tagged_per_task_and_bounded(executors: ExecutorRuntime) -> None:
    uid, conn = await started(executors, log_max_bytes=4096)
    conn.launch("8", ["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line$i; i=$((i+1)); done"],
                {})
    await collect(conn, 1)  # more than the bound: its first lines are rotated away
    conn.launch("7", ["sh", "-c", "echo hello from seven; echo err >&2"], {})
    await collect(conn, 1)
    files = sorted(executors.dir(uid).task_logs.glob("0.log*"))
    assert len(files) == 3 and sum(f.stat().st_size for f in files) <= 3 * (4096 + 200)
    logs = LogFiles(executors.dir(uid).task_logs)
    assert logs.read(0, stream="7") == ["hello from seven", "err"]
    eight = logs.read(0, stream="8")
    assert eight[-1] == "line399" and "line0" not in eight
    conn.close()


async def test_resize_grows_the_slots_and_writes_the_limits_that_changed(
        executors: ExecutorRuntime, tmp_path: Path) -> None:
    """A framework's Alloc is resized at nearly every launch, mostly for its slots:
    those take effect at once; the cgroup's limits are written when they change."""
    uid, conn = await started(executors, slots=1)
    gate = tmp_path / "gate"
    conn.launch("a", ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"], {})
    conn.launch("b", ["true"], {})  # queued behind a: one slot
    conn.resize(2, None, None)
    assert [e.id for e in await collect(conn, 1)] == ["b"]  # ran while a still waits
    gate.touch()
    assert [e.id for e in await collect(conn, 1)] == ["a"]
    cgroup = executors.dir(uid).read_config().cgroup
    assert cgroup, "the executor runs in no cgroup on this machine"
    cpu = next((Path(d) for k, d in cgroup["dirs"].items() if k in ("cpu", "unified")), None)
    assert cpu is not None, cgroup
    quota = cpu / ("cpu.cfs_quota_us" if (cpu / "cpu.cfs_quota_us").exists() else "cpu.max")
    conn.resize(2, 300, None)
    await eventually(lambda: quota.read_text().split()[0] == "30000", 30,
                     "the new cpu limit written")
    conn.resize(3, 300, None)  # slots alone: the limits stay as they are
    conn.launch("c", ["true"], {})
    assert [e.id for e in await collect(conn, 1)] == ["c"]
    assert quota.read_text().split()[0] == "30000"
    conn.close()


async def test_kill_and_stop(executors: ExecutorRuntime) -> None:
    uid, conn = await started(executors, slots=1)
    conn.launch("long", ["sleep", "60"], {})
    conn.launch("queued", ["sleep", "60"], {})
    conn.kill("queued")
    (dropped,) = await collect(conn, 1)
    assert (dropped.id, dropped.reason) == ("queued", "Killed")
    conn.stop(grace=5)
    (stopped,) = await collect(conn, 1)
    assert (stopped.id, stopped.signal) == ("long", 15)
    assert await asyncio.wait_for(conn.exits(), 10) == []  # the executor exits
    assert executors.dir(uid).stopped_file.exists()
    conn.close()


async def test_an_alloc_is_forgotten_only_with_its_cgroup(executors: ExecutorRuntime) -> None:
    """Issue 12's leak: the agent removed an Alloc's state although its cgroup could
    not go yet (the executor had said goodbye but not yet exited), and nothing
    knew of that cgroup any more. A cgroup that stays keeps the state."""
    assert executors.cgroups is not None, "this machine offers cgroups: test them"
    uid, conn = await started(executors, slots=1)
    conn.stop(grace=5)
    assert await asyncio.wait_for(conn.exits(), 10) == []
    conn.close()
    config = executors.dir(uid).read_config()
    assert config.cgroup is not None
    dirs = [Path(d) for d in config.cgroup["dirs"].values()]
    busy = dirs[0] / "held"  # a child group: rmdir of the Alloc's fails, as while busy
    busy.mkdir()
    try:
        assert not executors.remove(uid)
        assert executors.dir(uid).path.exists() and uid in executors.known()
    finally:
        busy.rmdir()
    assert executors.remove(uid)
    assert not executors.dir(uid).path.exists()
    assert not any(d.exists() for d in dirs)


async def test_a_task_with_a_user_runs_as_it_in_its_own_sandbox(
        executors: ExecutorRuntime, request: pytest.FixtureRequest) -> None:
    """A launch naming a user: the task runs with those ids and groups, in a working
    dir made for it and given to it; one it cannot start as is a StartError."""
    uid, conn = await started(executors)
    # The task's user walks the path to its sandbox (pytest's temp root is root's).
    base = Path(tempfile.mkdtemp(prefix="corral-sandboxes-"))
    os.chmod(base, 0o711)
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    sandbox = base / "t1"
    who = RunAs(1000, 3000, (4000,))
    conn.launch("t1", ["sh", "-c", "id -u; id -g; id -G; touch mine; pwd"], {}, str(sandbox),
                who)
    conn.launch("t2", ["no-such-program-here"], {}, "/", who)
    # A working dir the user may not enter (the executor, root, could).
    closed = base / "closed"
    closed.mkdir(0o700)
    conn.launch("t3", ["true"], {}, str(closed / "inner"), who)
    # A program named relative to the working dir runs from there.
    (base / "tool").mkdir(0o755)
    (base / "tool" / "run.sh").write_text("#!/bin/sh\necho ran in $(pwd)\n")
    (base / "tool" / "run.sh").chmod(0o755)
    conn.launch("t4", ["./run.sh"], {"PATH": "/usr/bin:/bin"}, str(base / "tool"), who)
    # The executor went back where it was: a task without a working dir runs in /.
    conn.launch("t5", ["pwd"], {}, "/", who)
    exits = {e.id: e for e in await collect(conn, 5)}
    assert exits["t1"].code == 0, exits
    logs = LogFiles(executors.dir(uid).task_logs)
    assert logs.read(0, stream="t1") == ["1000", "3000", "3000 4000", str(sandbox)]
    assert exits["t3"].reason == "StartError", exits["t3"]
    assert exits["t3"].message == f"chdir to {str(closed / 'inner')!r}: Permission denied"
    assert exits["t4"].code == 0, exits["t4"]
    assert logs.read(0, stream="t4") == [f"ran in {base / 'tool'}"]
    assert exits["t5"].code == 0 and logs.read(0, stream="t5") == ["/"]
    assert (sandbox.stat().st_uid, sandbox.stat().st_gid) == (1000, 3000)
    assert (sandbox / "mine").stat().st_uid == 1000
    assert exits["t2"].reason == "StartError"
    assert 'exec: "no-such-program-here": executable file not found' in exits["t2"].message
    conn.close()


async def test_an_ended_tasks_empty_sandbox_is_handed_to_the_next_of_its_user(
        executors: ExecutorRuntime, request: pytest.FixtureRequest) -> None:
    """A task that wrote nothing in its sandbox leaves it to the next task of the same
    user beside it (renamed, owned and moded afresh); one with files in it stays,
    and another user's task gets a sandbox of its own."""
    _, conn = await started(executors, slots=1)
    base = Path(tempfile.mkdtemp(prefix="corral-sandboxes-"))
    os.chmod(base, 0o711)
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    who, other = RunAs(1000, 3000, ()), RunAs(1001, 3001, ())

    async def run(task_id: str, command: list[str], user: RunAs) -> None:
        conn.launch(task_id, command, {}, str(base / task_id), user)
        (done,) = await collect(conn, 1)
        assert (done.id, done.code) == (task_id, 0), done

    await run("a", ["chmod", "777", "."], who)  # empty, but opened up by its task
    await run("b", ["true"], who)
    assert not (base / "a").exists(), "a's empty sandbox became b's"
    b = (base / "b").stat()
    assert (b.st_uid, b.st_gid, b.st_mode & 0o7777) == (1000, 3000, 0o700)
    await run("c", ["sh", "-c", "echo kept > file"], who)  # took b's; leaves a file
    assert not (base / "b").exists()
    await run("d", ["true"], who)
    assert (base / "c" / "file").read_text() == "kept\n"
    await run("e", ["true"], other)  # d's is empty, but not this user's
    assert (base / "d").is_dir()
    assert (base / "e").stat().st_uid == 1001
    conn.close()
