"""Mesos frameworks through offers (issue 16): on a fresh master (`--mesos-listen`)
with 4 agents (heartbeat at `corral agent`'s default), real framework processes (tests/offers_framework.py, on the lean
client tests/mesos_driver.py: one thread, calls pipelined on keep-alive
connections, as a production framework; every update acknowledged with its uuid):

    (a) throughput   one framework launches N × /bin/true as fast as offers allow
                     (tasks of 0.1 cpus on agents of --agent-cpus each, so at most
                     --parallelism at a time), against `xargs -P <parallelism>` of the
                     same N in the same run: tasks/s and the ratio. Both run the
                     program itself (CommandInfo.shell false, as xargs execs it):
                     through `/bin/sh -c` each task would cost a second exec, here
                     twice the CPU of /bin/true alone. --shell runs both through
                     it (Mesos' default CommandInfo; `xargs ... sh -c /bin/true`)
    (b) round trip   a framework declines every offer with refuse_seconds 0: the time
                     from sending DECLINE to the next offer of that node (p50, p99),
                     and the ACCEPT call's own latency from (a)
    (c) fairness     3 frameworks (cpu-heavy, mem-heavy, balanced tasks; one task per
                     offer, long-running) until the cluster is full: each one's
                     dominant share, and the DRF fairness error
                     (max − min) / max of those shares

Before (a), the idle cluster's own CPU (master and agents, from /proc, so other
load on the machine does not count) over IDLE_SECONDS: what competes with the
tasks in the burst. Each figure is the median of --runs runs, a fresh cluster each. Prints figures;
never pass/fail. Goals: (a) ≥ 0.5 × xargs, (b) p99 ≤ 50 ms. Every process it
starts is stopped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.batch import Cluster, ExecutorSampler, baseline, cpu_seconds
from corral.client.clock import FakeClock
from corral.offers.allocator import Allocator
from corral.offers.resources import Resources
from tests.cluster import free_port, wait_for
from tests.mesos_client import credentialed, leading
from tests.offers_framework import FrameworkProcess

TASK_CPUS = 0.1
AGENT_HEARTBEAT_SECONDS = 1.0  # `corral agent`'s and `corral up`'s default
TASK_MEM = 32.0
# Per-task (cpus, MiB). On 4 agents of 0.8 cpus and 4 GiB a task is 1/32 of the
# cpus, 1/64 of the memory, 1/64 of either: DRF evens out ~65 tasks.
IDLE_SECONDS = 5.0
FAIRNESS_SHAPES = {"cpu-heavy": (0.1, 32.0), "mem-heavy": (0.02, 256.0),
                   "balanced": (0.05, 128.0)}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def mesos_cluster(tmp: Path, args: argparse.Namespace) -> tuple[Cluster, str]:
    port = free_port()
    cluster = Cluster(tmp, args.agents, 1000, master_args=["--mesos-listen", f"127.0.0.1:{port}"],
                      # The agents renew their Lease at the product's default (the
                      # test harness's 0.5 s is for quick node-loss tests).
                      agent_args=["--cpus", str(args.agent_cpus), "--memory", "4Gi",
                                  "--heartbeat", str(AGENT_HEARTBEAT_SECONDS)])
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: leading(url), 60, "the mesos master leading")
    return cluster, credentialed(url, cluster.master.data_dir)


def throughput(cluster: Cluster, url: str, tmp: Path, tasks: int,
               through_shell: bool) -> tuple[float, dict[str, Any]]:
    """Seconds for ``tasks`` × /bin/true, and where the time (and CPU) went."""
    pids = {"master": [cluster.master_pid], "agents": [a.pid for a in cluster.agents]}
    # The agents' reaped children too: an executor's start (its first fork).
    before = {k: sum(cpu_seconds(p, children=True) for p in ps) for k, ps in pids.items()}
    homes = tuple(str(a.state_dir.resolve()) for a in cluster.agents)
    shell = [] if through_shell else ["--no-shell"]
    with ExecutorSampler(under=homes).running() as sampler:
        fw = FrameworkProcess(url, tmp / "burst.jsonl", "burst", "--tasks", str(tasks),
                              "--command", "/bin/true", *shell, "--cpus", str(TASK_CPUS),
                              "--mem", str(TASK_MEM), "--exit-when-done",
                              # a master whose leadership lapses under load: on again
                              "--failover-timeout", "120")
        try:
            cpu_fw, deadline = 0.0, time.monotonic() + 1800
            while fw.proc.poll() is None and time.monotonic() < deadline:
                # its CPU, read before it is reaped
                cpu_fw = max(cpu_fw, cpu_seconds(fw.proc.pid))
                time.sleep(0.1)
            code = fw.wait(timeout=1800)
        finally:
            fw.stop()
        cpu = {k: sum(cpu_seconds(p, children=True) for p in ps) - before[k]
               for k, ps in pids.items()}
    cpu["executors"] = sum(sampler.cpu.values())
    cpu["framework"] = cpu_fw
    done = fw.records("done")
    if code != 0 or not done:
        raise RuntimeError(f"burst framework failed ({code}): {fw.errors()}")
    states = [r["state"] for r in fw.records("update")]
    finished = states.count("TASK_FINISHED")
    if finished != tasks:
        print(f"  warning: {finished} of {tasks} tasks finished "
              f"({ {s: states.count(s) for s in set(states)} })", flush=True)
    again = len(fw.records("resubscribed"))
    if again:
        print(f"  warning: the framework subscribed again {again} time(s): the Mesos "
              f"master's leadership lapsed (see its log)", flush=True)
    subscribed = fw.records("subscribed")[0]["t"]
    costs = breakdown(fw.records())
    costs["cpu_ms"] = {k: 1000 * v / tasks for k, v in cpu.items()}
    return done[0]["t"] - subscribed, costs


def breakdown(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Where a task's time goes, from the framework's own records (ms, medians):
    ACCEPT's call, ACCEPT sent → RUNNING, RUNNING → FINISHED, the offer's last task
    FINISHED → the node offered again; and the framework's time in calls."""
    seen: dict[tuple[str, str], float] = {}
    for r in records:
        if r["event"] == "update":
            seen.setdefault((r["task"], r["state"]), r["t"])
    to_running, running_to_end, end_to_offer = [], [], []
    offers_by_node: dict[str, list[float]] = {}
    for r in records:
        if r["event"] == "offer":
            offers_by_node.setdefault(r["node"], []).append(r["t"])
    for r in (x for x in records if x["event"] == "accepted"):
        prefix, _, first = r["first"].rpartition("-")
        tasks = [f"{prefix}-{int(first) + i}" for i in range(r["tasks"])]
        ends = [seen[(t, "TASK_FINISHED")] for t in tasks if (t, "TASK_FINISHED") in seen]
        for t in tasks:
            if (t, "TASK_RUNNING") in seen:
                to_running.append(seen[(t, "TASK_RUNNING")] - r["sent"])
                if (t, "TASK_FINISHED") in seen:
                    running_to_end.append(seen[(t, "TASK_FINISHED")] - seen[(t, "TASK_RUNNING")])
        if ends:
            later = [t for t in offers_by_node.get(r["node"], []) if t > max(ends)]
            if later:
                end_to_offer.append(min(later) - max(ends))
    done = next(x for x in records if x["event"] == "done")
    ms = lambda xs: 1000 * statistics.median(xs) if xs else float("nan")
    return {"accept_ms": [r["call_ms"] for r in records if r["event"] == "accepted"],
            "to_running": ms(to_running), "running": ms(running_to_end),
            "end_to_offer": ms(end_to_offer),
            "calls": {k: (n, total / 1000 / done["elapsed"])
                      for k, (n, total) in done["calls"].items()}}


def round_trips(url: str, tmp: Path, offers: int) -> tuple[list[float], float]:
    """DECLINE sent → next offer of that node (ms each), and DECLINE's own call (ms)."""
    fw = FrameworkProcess(url, tmp / "pingpong.jsonl", "pingpong", "--decline", "0",
                          "--max-offers", str(offers))
    try:
        fw.wait(timeout=600)
    finally:
        fw.stop()
    last_decline: dict[str, float] = {}
    trips: list[float] = []
    for r in fw.records():
        if r["event"] == "declined":
            last_decline[r["node"]] = r["sent"]
        elif r["event"] == "offer" and r["node"] in last_decline:
            trips.append(1000 * (r["t"] - last_decline.pop(r["node"])))
    count, total = fw.records("done")[0]["calls"]["DECLINE"]
    return trips, total / count


def fairness(url: str, tmp: Path, cluster_cpus: float, cluster_mem: float) -> dict[str, float]:
    """Dominant share of each of three frameworks once the cluster is full."""
    go = tmp / "go"
    fws = {name: FrameworkProcess(url, tmp / f"{name}.jsonl", name, "--cpus", str(cpus),
                                  "--mem", str(mem), "--per-offer", "1", "--go", str(go))
           for name, (cpus, mem) in FAIRNESS_SHAPES.items()}
    try:
        wait_for(lambda: all(f.records("subscribed") for f in fws.values()), 60, "subscribed")
        go.touch()
        settled = _settled(fws)
        wait_for(settled, 600, "the cluster full and no task started for 3 s")
    finally:
        for f in fws.values():
            f.stop()
    shares = {}
    for name, f in fws.items():
        cpus, mem = FAIRNESS_SHAPES[name]
        n = len(f.running())
        shares[name] = max(n * cpus / cluster_cpus, n * mem / cluster_mem)
    return shares


def _settled(fws: dict[str, FrameworkProcess]) -> Any:
    last = {"count": -1, "since": time.monotonic()}

    def check() -> bool:
        count = sum(len(f.running()) for f in fws.values())
        now = time.monotonic()
        if count != last["count"]:
            last.update(count=count, since=now)
        return count > 0 and now - last["since"] >= 3.0

    return check


def simulated_shares(args: argparse.Namespace) -> dict[str, float]:
    """The same three frameworks on the same nodes through the Allocator alone
    (fake clock, no processes): what Mesos-style DRF itself gives this workload,
    so the measured error can be told apart from the allocator's own."""
    alloc = Allocator(FakeClock())
    alloc.update_capacity({f"n{i}": Resources(cpus=args.agent_cpus, mem=4096.0)
                           for i in range(args.agents)})
    for name in FAIRNESS_SHAPES:
        alloc.add_framework(name, ["*"])
    while offers := alloc.allocate():
        for offer in offers:
            task = Resources(*FAIRNESS_SHAPES[offer.framework_id])
            if not task.fits(offer.resources):
                alloc.decline(offer.framework_id, [offer.id], 5.0)
                continue
            taken = alloc.take(offer.framework_id, [offer.id])
            alloc.track_used(offer.framework_id, offer.role, offer.node, task)
            alloc.give_back(taken, {offer.node: task})
    return alloc.shares()


def allocs(cluster: Cluster) -> list[Any]:
    with cluster.master.http() as http:
        return list(http.get("/apis/corral.dev/v1/allocs").json()["items"])


def fairness_error(shares: dict[str, float]) -> float:
    values = list(shares.values())
    return (max(values) - min(values)) / max(values) if max(values) else float("nan")


def idle_cpu(cluster: Cluster, seconds: float) -> dict[str, float]:
    """Percent of one CPU the master and the agents (summed) use doing nothing."""
    pids = {"master": [cluster.master_pid], "agents": [a.pid for a in cluster.agents]}
    before = {k: sum(cpu_seconds(p) for p in ps) for k, ps in pids.items()}
    start = time.monotonic()
    time.sleep(seconds)  # the measurement's own window, not a wait for a condition
    elapsed = time.monotonic() - start
    return {k: 100 * (sum(cpu_seconds(p) for p in ps) - before[k]) / elapsed
            for k, ps in pids.items()}


def one_run(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    cluster, url = mesos_cluster(tmp, args)
    try:
        idle = idle_cpu(cluster, IDLE_SECONDS)
        elapsed, costs = throughput(cluster, url, tmp, args.tasks, args.shell)
        # Each phase on a quiet cluster: the burst's Allocs go first.
        wait_for(lambda: not allocs(cluster), 120, "the burst framework's Allocs gone")
        trips, decline_ms = round_trips(url, tmp, args.offers)
        shares = fairness(url, tmp, args.agents * args.agent_cpus, args.agents * 4096.0)
        # The stopped frameworks' Allocs go with them: let the agents finish that
        # before they are torn down.
        wait_for(lambda: not allocs(cluster), 120, "the frameworks' Allocs gone")
    finally:
        cluster.stop()
    xargs = baseline(args.tasks, args.parallelism,
                     ("sh", "-c", "/bin/true") if args.shell else ("/bin/true",))
    return {"framework": elapsed, "xargs": xargs, "accept_ms": costs.pop("accept_ms"),
            "costs": costs, "idle": idle, "trips": trips, "decline_ms": decline_ms, "shares": shares}


def report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    n = args.tasks
    fw = statistics.median(n / r["framework"] for r in runs)
    raw = statistics.median(n / r["xargs"] for r in runs)
    ratio = statistics.median(r["xargs"] / r["framework"] for r in runs)
    how = "through /bin/sh -c" if args.shell else "no shell"
    print(f"\n{n} × /bin/true ({how}) on {args.agents} agents ({args.parallelism} at a time), "
          f"median of {len(runs)}:")
    print(f"  (a) framework   {fw:8.1f} tasks/s   ({ratio:.2f} × xargs; goal ≥ 0.5)")
    print(f"      xargs -P    {raw:8.1f} tasks/s")
    p50 = statistics.median(percentile(r["trips"], 50) for r in runs)
    p99 = statistics.median(percentile(r["trips"], 99) for r in runs)
    a50 = statistics.median(percentile(r["accept_ms"], 50) for r in runs)
    a99 = statistics.median(percentile(r["accept_ms"], 99) for r in runs)
    print(f"  (b) offer round trip (DECLINE → next offer): p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms (goal ≤ 50); the DECLINE call itself: mean "
          f"{statistics.median(r['decline_ms'] for r in runs):.1f} ms")
    print(f"      ACCEPT call: p50 {a50:.1f} ms, p99 {a99:.1f} ms")
    costs = {k: statistics.median(r["costs"][k] for r in runs)
             for k in ("to_running", "running", "end_to_offer")}
    print(f"      a task's path (median ms): ACCEPT sent → RUNNING {costs['to_running']:.0f}, "
          f"RUNNING → FINISHED {costs['running']:.0f}, offer's last FINISHED → node "
          f"offered again {costs['end_to_offer']:.0f}")
    cpu = {k: statistics.median(r["costs"]["cpu_ms"][k] for r in runs)
           for k in ("master", "agents", "executors", "framework")}
    print(f"      CPU per task (ms): master {cpu['master']:.1f}, agents {cpu['agents']:.1f}, "
          f"executors {cpu['executors']:.1f} (corral {cpu['master'] + cpu['agents'] + cpu['executors']:.1f}); "
          f"the framework process {cpu['framework']:.1f}")
    idle = {k: statistics.median(r["idle"][k] for r in runs) for k in ("master", "agents")}
    print(f"      idle cluster before the burst (% of one CPU): master {idle['master']:.1f}, "
          f"{args.agents} agents {idle['agents']:.1f}")
    calls = runs[len(runs) // 2]["costs"]["calls"]
    print("      framework's time in calls (count, share of the run): " + ", ".join(
        f"{k} {n} {busy:.0%}" for k, (n, busy) in sorted(calls.items())))
    errors = [fairness_error(r["shares"]) for r in runs]
    shares = {k: statistics.median(r["shares"][k] for r in runs) for k in FAIRNESS_SHAPES}
    print("  (c) dominant shares: " + ", ".join(f"{k} {v:.3f}" for k, v in shares.items())
          + f"; DRF fairness error {statistics.median(errors):.3f}")
    ideal = simulated_shares(args)
    print("      the allocator alone on this workload: " + ", ".join(
        f"{k} {v:.3f}" for k, v in ideal.items()) + f"; error {fairness_error(ideal):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--parallelism", type=int, default=32,
                        help="tasks at once, for xargs and (through agent cpus) the framework")
    parser.add_argument("--offers", type=int, default=400, help="offers in the round-trip run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shell", action="store_true",
                        help="every task (the framework's and xargs') through /bin/sh -c")
    args = parser.parse_args()
    args.agent_cpus = round(args.parallelism * TASK_CPUS / args.agents, 3)
    runs = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="corral-bench-offers-") as tmp:
            result = one_run(Path(tmp), args)
        runs.append(result)
        print(f"  run {run + 1}: framework {result['framework']:.1f} s, xargs "
              f"{result['xargs']:.2f} s, round trip p99 {percentile(result['trips'], 99):.1f} ms, "
              f"fairness error {fairness_error(result['shares']):.3f}", flush=True)
    report(args, runs)


if __name__ == "__main__":
    main()
