"""Limits enforced by this machine's real cgroups (or the rlimits fallback).

These need writable cgroups (root on a host with cgroup v1 or v2, as the
project's machines are): where there are none they fail, naming the reason,
rather than skip."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from corral.agent.runtime.cgroups import ContainerCgroup
from corral.agent.runtime.process import ProcessRuntime
from corral.agent.runtime.shim import StateDir
from tests.integration.agent.conftest import LaunchFactory, wait_exited
from tests.poll import eventually

MEMORY_HOG = ["python3", "-c", "b = [bytearray(1 << 20) for _ in range(1024)]"]


def cgroup_runtime(root: Path) -> ProcessRuntime:
    rt = ProcessRuntime(root)
    assert rt.isolation().mechanism != "rlimits", (
        f"no writable memory cgroup on this machine: {rt.isolation().reason}")
    return rt


def instance_cgroup(root: Path, cid: str) -> ContainerCgroup:
    cgroup = StateDir(root / cid).read_cgroup()
    assert cgroup is not None
    return cgroup


async def test_memory_hog_is_oom_killed(runtime_root: Path, launch_for: LaunchFactory) -> None:
    rt = cgroup_runtime(runtime_root)
    state = await rt.start(launch_for("hog", MEMORY_HOG, memory_limit_bytes=64 << 20))
    await wait_exited(rt, state.container_id, timeout=60)
    state = await rt.status(state.container_id)
    assert state.oom_killed and state.reason == "OOMKilled"
    assert state.exit_code == 137
    assert all(not Path(d).exists()
               for d in instance_cgroup(runtime_root, state.container_id).dirs.values())


async def test_within_its_memory_limit_runs_to_completion(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = cgroup_runtime(runtime_root)
    small = ["python3", "-c", "b = bytearray(8 << 20)"]
    state = await rt.start(launch_for("small", small, memory_limit_bytes=256 << 20))
    await wait_exited(rt, state.container_id, timeout=60)
    state = await rt.status(state.container_id)
    assert (state.reason, state.oom_killed) == ("Completed", False)


async def test_busy_loop_gets_about_its_cpu_quota(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    """A busy loop with a limit of 200m runs up to its quota and no further. Read
    off the kernel's own accounting (cpuacct usage over the CFS periods that
    passed), not off our wall clock: on a loaded machine the loop may wait long
    for its turns, and a sample taken late would skew a time-based ratio."""
    rt = cgroup_runtime(runtime_root)
    assert "cpu" in rt.isolation().enforced, (
        f"no writable cpu cgroup on this machine: {rt.isolation().reason}")
    busy = launch_for("busy", ["sh", "-c", "while :; do :; done"],
                      cpu_request_millis=100, cpu_limit_millis=200)
    state = await rt.start(busy)
    try:
        cgroup = instance_cgroup(runtime_root, state.container_id)
        cpu = Path(cgroup.dirs["cpu"])
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "20000"
        assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (cpu / "cpu.shares").read_text().strip() == "102"
        first, used_first = _cpu_stat(cpu), await rt.usage(state.container_id)
        # The positive signal: the kernel stopped the loop at its quota (however
        # long a loaded machine takes to give it one full period), over at least
        # 10 periods so that the ratio below means something.
        await eventually(lambda: _throttled_over(_cpu_stat(cpu), first, 10), timeout=120,
                         what="the loop throttled at its quota, over 10 periods")
        last, used_last = _cpu_stat(cpu), await rt.usage(state.container_id)
    finally:
        await rt.stop(state.container_id, grace_seconds=1)
    assert used_first is not None and used_last is not None
    used = used_last.cpu_usage_ns - used_first.cpu_usage_ns
    periods = last["nr_periods"] - first["nr_periods"]
    throttled = last["nr_throttled"] - first["nr_throttled"]
    # An unthrottled busy loop would use a whole core (ratio ≈ 1); the quota is 0.2.
    ratio = used / (periods * 100_000_000)
    print(f"cpu ratio {ratio:.3f} over {periods} periods, {throttled} throttled")
    assert ratio < 0.3, (ratio, first, last)
    # ...and it got its quota: each throttled period, its whole 20 ms (the kernel
    # hands runtime out in 5 ms slices, so allow a slice short of it).
    assert used >= throttled * 15_000_000, (used, throttled)


def _throttled_over(now: dict[str, int], first: dict[str, int], periods: int) -> bool:
    return (now["nr_throttled"] > first["nr_throttled"]
            and now["nr_periods"] >= first["nr_periods"] + periods)


def _cpu_stat(cpu_dir: Path) -> dict[str, int]:
    """cgroup v1 cpu.stat: nr_periods, nr_throttled, throttled_time."""
    pairs = (line.split() for line in (cpu_dir / "cpu.stat").read_text().splitlines())
    return {key: int(value) for key, value in pairs}


async def test_pids_limit(runtime_root: Path, launch_for: LaunchFactory) -> None:
    rt = cgroup_runtime(runtime_root)
    assert "pids" in rt.isolation().enforced, (
        f"no writable pids cgroup on this machine: {rt.isolation().reason}")
    # With pids.max 3 (the shell itself and at most two more) the 5 sleeps cannot all fork.
    script = "n=0; for i in 1 2 3 4 5; do sleep 5 & [ $? -eq 0 ] && n=$((n+1)); done; " \
             "echo started=$(jobs -p | wc -l); kill $(jobs -p) 2>/dev/null; exit 0"
    launch = launch_for("forky", ["sh", "-c", script], pids_limit=3)
    state = await rt.start(launch)
    await wait_exited(rt, state.container_id)
    log = (Path(launch.log_dir) / "0.log").read_text()
    assert "fork" in log.lower() or "resource temporarily unavailable" in log.lower(), log


async def test_rlimits_fallback_reports_itself_and_limits_memory(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    rt = ProcessRuntime(runtime_root, allow_cgroups=False)
    isolation = rt.isolation()
    assert isolation.mechanism == "rlimits"
    assert "CPU limits and OOM detection not enforced" in isolation.reason
    state = await rt.start(launch_for("hog", MEMORY_HOG, memory_limit_bytes=256 << 20))
    await wait_exited(rt, state.container_id, timeout=60)
    state = await rt.status(state.container_id)
    # Not an OOM kill: the allocation fails inside the process (MemoryError).
    assert (state.exit_code, state.reason, state.oom_killed) == (1, "Error", False)


async def test_usage_is_reported_while_running(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    for rt in (ProcessRuntime(runtime_root / "cg"), ProcessRuntime(runtime_root / "rl",
                                                                    allow_cgroups=False)):
        hold = ["python3", "-c", "import time; b = bytearray(32 << 20); time.sleep(60)"]
        state = await rt.start(launch_for(f"hold-{rt.isolation().mechanism}", hold))
        try:
            deadline = time.monotonic() + 20
            while True:
                usage = await rt.usage(state.container_id)
                if usage is not None and usage.memory_bytes > 32 << 20:
                    break
                assert time.monotonic() < deadline, usage
                await asyncio.sleep(0.05)
            assert usage.cpu_usage_ns > 0
        finally:
            await rt.stop(state.container_id, grace_seconds=1)


async def test_command_starts_in_its_cgroup_and_the_shim_stays_out(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    """The shim steps into the group only while it spawns: the command is inside
    from its first instruction, the shim is back where it came from."""
    rt = cgroup_runtime(runtime_root)
    launch = launch_for("inside", ["sh", "-c", "cat /proc/self/cgroup; sleep 30"])
    state = await rt.start(launch)
    try:
        cgroup = instance_cgroup(runtime_root, state.container_id)
        assert state.pid is not None and state.shim_pid is not None
        assert state.pid in cgroup.pids()
        assert state.shim_pid not in cgroup.pids()
        shim_groups = Path(f"/proc/{state.shim_pid}/cgroup").read_text()
        assert state.container_id not in shim_groups, shim_groups
        deadline = time.monotonic() + 5
        log = Path(launch.log_dir) / "0.log"
        while state.container_id not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the command's first read of its cgroup"
            await asyncio.sleep(0.05)
    finally:
        await rt.stop(state.container_id, 1)
        await wait_exited(rt, state.container_id)


async def test_the_pids_limit_is_the_pods_not_each_containers(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    """The kubelet's podPidsLimit: one count for all of a pod's containers, held
    by the pod's group (the parent of theirs). With 8 allowed and 5 taken by one
    container, the other cannot start its 8 sleeps; the group is adopted by a
    restarted runtime and goes with the pod."""
    rt = cgroup_runtime(runtime_root)
    assert "pids" in rt.isolation().enforced, rt.isolation().reason
    hold = launch_for("hold", ["sh", "-c", "for i in 1 2 3 4; do sleep 60 & done; wait"],
                      pod_pids_limit=8)
    held = await rt.start(hold)
    group = instance_cgroup(runtime_root, held.container_id)
    pod = group.pod_group()
    assert pod is not None and pod.pids_max() == 8 and group.pids_max() is None
    assert all(Path(d).parent == Path(p) for d, p in zip(group.dirs.values(),
                                                          pod.dirs.values()))
    deadline = time.monotonic() + 20
    while len(group.pids()) < 5:  # sh and its four sleeps
        assert time.monotonic() < deadline, group.pids()
        await asyncio.sleep(0.05)
    script = ("for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; "
              "echo started=$(jobs -p | wc -l); kill $(jobs -p); exit 0")
    forky = launch_for("forky", ["sh", "-c", script], pod_pids_limit=8)
    state = await rt.start(forky)
    await wait_exited(rt, state.container_id)
    log = (Path(forky.log_dir) / "0.log").read_text().lower()
    assert "fork" in log or "resource temporarily unavailable" in log, log

    restarted = ProcessRuntime(runtime_root)  # an agent restart: the group is adopted
    assert hold.pod_uid in restarted.pod_uids()
    assert not await restarted.remove_pod(hold.pod_uid)  # its containers' groups remain
    for cid in (held.container_id, state.container_id):
        await restarted.stop(cid, grace_seconds=1)
        await restarted.remove(cid)
    # Killed processes take a moment to leave their groups (longer on a loaded
    # machine than remove_pod's own retries): the agent's sweep tries again, so do we.
    async def pod_group_removed() -> bool:
        return await restarted.remove_pod(hold.pod_uid)

    await eventually(pod_group_removed, timeout=30,
                     what="the pod's group removed once its containers are gone")
    assert hold.pod_uid not in restarted.pod_uids()
    assert not any(Path(d).exists() for d in pod.dirs.values())


async def test_a_pod_grouped_by_an_older_agent_keeps_its_group(
    runtime_root: Path, launch_for: LaunchFactory,
) -> None:
    """Before each node had its own parent, pods were grouped straight in the
    host's (corral/pod-<uid>). A cgroup cannot move to another parent, so a
    runtime with a node's parent adopts such a group from its own instances:
    lists it, puts the pod's new instances in it, and removes it with the pod;
    a runtime over another state dir (another node) does not see it."""
    older = cgroup_runtime(runtime_root)  # the parent "corral", as agents had it
    first = launch_for("first", ["sleep", "60"], pod_pids_limit=16)
    await older.start(first)
    legacy = instance_cgroup(runtime_root, first.container_id).pod_group()
    assert legacy is not None and legacy.pids_max() == 16
    parent = f"corral/{runtime_root.parent.name}"
    node = ProcessRuntime(runtime_root, parent)
    neighbour = ProcessRuntime(runtime_root.parent / "neighbour", parent)
    try:
        assert first.pod_uid in node.pod_uids() and neighbour.pod_uids() == []
        second = await node.start(launch_for("second", ["true"]))
        group = instance_cgroup(runtime_root, second.container_id)
        assert all(Path(d).parent == Path(legacy.dirs[k]) for k, d in group.dirs.items())
        for cid in (first.container_id, second.container_id):
            await node.stop(cid, grace_seconds=1)
            await node.remove(cid)

        async def pod_group_removed() -> bool:
            return await node.remove_pod(first.pod_uid)

        await eventually(pod_group_removed, timeout=30, what="the adopted group removed")
        assert node.pod_uids() == [] and not any(Path(d).exists() for d in legacy.dirs.values())
    finally:
        node.remove_parent()
    assert node.cgroups is not None
    assert not any(Path(root, parent).exists() for root in node.cgroups.roots.values())
