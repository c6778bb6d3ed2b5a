"""Batch throughput: N × `/bin/true` on 4 agents as (a) a task array (a Job run as
tasks in Allocs; as the nodes' unprivileged pod user, the default, and as root,
which the executor starts without changing user), (b) a Pod Job (one Pod per completion), (c) `xargs -P` on this
box (the raw fork/exec baseline), (d) Ray and Dask when installed (the optional
`peers` extra); then one big task array (default 100,000): tasks/s and the
master's peak RSS growth.

    run (fresh cluster each): array Job ─► Complete; Pod Job ─► Complete (unless
    --no-pod-job); then xargs, Ray, Dask on the same box, in every run
    tasks/s = N / elapsed (Job created → Complete condition seen)
    CPU per task (array): master, agents, executors (sampled from /proc)

Each figure is the median of --runs runs. Prints figures; never pass/fail.
Goals (issue 15): array ≥ 0.6 × xargs and ahead of Ray in the same run; the big
array with master RSS growth < 100 MB. Every process it starts is stopped,
also on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cluster import Agent, Master, remove_node_homes, stop_on_sigterm

NS = "default"
TICKS = os.sysconf("SC_CLK_TCK")
EXECUTOR = "corral-executor"


def job(name: str, completions: int, parallelism: int, array: bool,
        as_root: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    spec: dict[str, Any] = {"completions": completions, "parallelism": parallelism,
                            "backoffLimit": completions}
    if array:
        meta["annotations"] = {"corral.dev/run-as": "tasks"}
        spec["completionMode"] = "Indexed"
    spec["template"] = {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "none", "command": ["/bin/true"]}]}}
    if as_root:  # the executor's own user: posix_spawn, no user to switch to
        spec["template"]["spec"]["securityContext"] = {"runAsUser": 0}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def run_job(master: Master, body: dict[str, Any]) -> float:
    name = body["metadata"]["name"]
    with master.http() as http:
        start = time.perf_counter()
        http.post(f"/apis/batch/v1/namespaces/{NS}/jobs", json=body).raise_for_status()
        while True:
            status = http.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}").json().get(
                "status", {})
            if any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
                   for c in status.get("conditions", [])):
                elapsed = time.perf_counter() - start
                print(f"  {name}: succeeded {status.get('succeeded')} failed "
                      f"{status.get('failed', 0)} in {elapsed:.1f} s", flush=True)
                return elapsed
            time.sleep(0.1)


# -- CPU and memory, from /proc ------------------------------------------------------

def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime; with ``children``, also that of its children it has reaped
    (cutime + cstime: an executor's start, whose first fork the agent reaps)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = int(fields[11]) + int(fields[12])
    return (own + (int(fields[13]) + int(fields[14]) if children else 0)) / TICKS


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class ExecutorSampler:
    """The last CPU reading of every executor (they exit with their Alloc); with
    ``under``, only those whose state directory is below one of those paths (one
    run's agents', on a machine that other clusters share)."""

    def __init__(self, under: tuple[str, ...] = ()) -> None:
        self.under = under
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    if (entry / "comm").read_text().strip() != EXECUTOR:
                        continue
                    if self.under and not any(
                            u in (entry / "cmdline").read_text() for u in self.under):
                        continue
                except OSError:
                    continue
                self.cpu[int(entry.name)] = max(self.cpu.get(int(entry.name), 0.0),
                                                cpu_seconds(int(entry.name)))

    @contextmanager
    def running(self) -> Iterator[ExecutorSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def baseline(total: int, parallel: int, command: tuple[str, ...] = ("/bin/true",)) -> float:
    """Seconds for `xargs -P` to run ``command`` ``total`` times (each given one
    more word, which /bin/true and ``sh -c`` as its $0 ignore)."""
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", str(parallel), "-n", "1", *command],
                   input="\n".join(["x"] * total), text=True, check=True)
    return time.perf_counter() - start


# -- peers: Ray and Dask, when installed -------------------------------------------------

def _true() -> int:
    return subprocess.run(["/bin/true"], check=False).returncode


def ray_run(total: int, parallel: int) -> float | None:
    try:
        import ray  # type: ignore[import-not-found]
    except ImportError:
        return None
    ray.init(num_cpus=parallel, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")  # loopback only
    try:
        remote = ray.remote(_true)
        ray.get([remote.remote() for _ in range(parallel)])  # workers warm
        start = time.perf_counter()
        ray.get([remote.remote() for _ in range(total)])
        return time.perf_counter() - start
    finally:
        ray.shutdown()


def dask_run(total: int, parallel: int) -> float | None:
    try:
        from dask.distributed import Client, LocalCluster  # type: ignore[import-not-found]
    except ImportError:
        return None
    with LocalCluster(n_workers=2, threads_per_worker=max(1, parallel // 2),
                      dashboard_address=None, host="127.0.0.1") as cluster, Client(cluster) as client:
        client.gather(client.map(lambda i: _true(), range(parallel), pure=False))
        start = time.perf_counter()
        client.gather(client.map(lambda i: _true(), range(total), pure=False))
        return time.perf_counter() - start


PEERS: dict[str, Callable[[int, int], float | None]] = {"Ray": ray_run, "Dask": dask_run}


# -- one fresh cluster --------------------------------------------------------------------

class Cluster:
    def __init__(self, tmp: Path, n_agents: int, max_pods: int, *,
                 master_args: list[str] | None = None,
                 agent_args: list[str] | None = None) -> None:
        self.master = Master(tmp / "master", extra_args=master_args or []).start()
        self.agents = [Agent(self.master, f"batch-{i}", tmp / f"agent-{i}", f"127.0.1.{70 + i}",
                             ["--pods", str(max_pods), *(agent_args or [])])
                       for i in range(n_agents)]
        for agent in self.agents:
            agent.start()

    def stop(self) -> None:
        for agent in self.agents:
            agent.cleanup()
        self.master.stop()
        remove_node_homes()  # the agents' state dirs, moved out of the 0700 temp dir

    @property
    def master_pid(self) -> int:
        assert self.master.proc is not None
        return self.master.proc.pid


def measured_array(cluster: Cluster, name: str, completions: int, parallelism: int,
                   as_root: bool = False) -> tuple[float, dict[str, float], int]:
    """Elapsed, CPU seconds by component, and the master's peak RSS growth (KiB)."""
    master_pid = cluster.master_pid
    agent_pids = [a.pid for a in cluster.agents]
    before = {"master": cpu_seconds(master_pid),
              "agents": sum(cpu_seconds(p) for p in agent_pids)}
    rss_before = rss_kib(master_pid)
    with ExecutorSampler().running() as sampler:
        elapsed = run_job(cluster.master, job(name, completions, parallelism, array=True,
                                              as_root=as_root))
    cpu = {"master": cpu_seconds(master_pid) - before["master"],
           "agents": sum(cpu_seconds(p) for p in agent_pids) - before["agents"],
           "executors": sum(sampler.cpu.values())}
    return elapsed, cpu, rss_kib(master_pid, "VmHWM") - rss_before


def one_run(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    cluster = Cluster(tmp, args.agents, args.completions + 10)
    try:
        array, cpu, _ = measured_array(cluster, "array", args.completions, args.parallelism)
        root, _, _ = measured_array(cluster, "array-root", args.completions, args.parallelism,
                                    as_root=True)
        pods = (run_job(cluster.master, job("pods", args.completions, args.parallelism, False))
                if args.pod_job else None)
    finally:
        cluster.stop()
    return {"array": array, "array_root": root, "pods": pods, "cpu": cpu}


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    n = args.completions
    rate: Callable[[float], float] = lambda seconds: n / seconds
    array, raw = median_of(runs, "array"), median_of(runs, "xargs")
    print(f"\n{n} × /bin/true, parallelism {args.parallelism}, {args.agents} agents, "
          f"median of {args.runs} (tasks/s):")
    root = median_of(runs, "array_root")
    print(f"  (a) array Job   {rate(array):8.1f}   ({rate(array) / rate(raw):.2f} × xargs; "
          "as the pod user)")
    print(f"      as root     {rate(root):8.1f}   ({rate(root) / rate(raw):.2f} × xargs; "
          f"the pod user's runs at {root / array:.2f} × its speed)")
    if args.pod_job:
        pods = median_of(runs, "pods")
        print(f"  (b) Pod Job     {rate(pods):8.1f}   ({rate(pods) / rate(raw):.2f} × xargs)")
    print(f"  (c) xargs -P    {rate(raw):8.1f}")
    for peer in PEERS:
        if runs[0][peer] is None:
            print(f"  (d) {peer:<11} not installed (pip install -e .[peers])")
            continue
        seconds = median_of(runs, peer)
        print(f"  (d) {peer:<11} {rate(seconds):8.1f}   (array {seconds / array:.2f} × {peer}; "
              f"in each run: " + ", ".join(f"{r[peer] / r['array']:.2f}" for r in runs) + ")")
    cpu = {k: statistics.median(r["cpu"][k] for r in runs) for k in runs[0]["cpu"]}
    per_task = {k: 1000 * v / n for k, v in cpu.items()}
    print("  array CPU per task (ms): " + ", ".join(f"{k} {v:.3f}" for k, v in per_task.items())
          + f"; total {sum(per_task.values()):.3f}")


def big_run(tmp: Path, args: argparse.Namespace) -> None:
    cluster = Cluster(tmp, args.agents, 110)
    try:
        elapsed, cpu, growth = measured_array(cluster, "big", args.big, args.parallelism)
    finally:
        cluster.stop()
    print(f"\nbig array: {args.big} × /bin/true: {args.big / elapsed:.1f} tasks/s "
          f"({elapsed:.1f} s); master peak RSS growth {growth / 1024:.1f} MiB "
          f"(goal < 100); CPU per task (ms): "
          + ", ".join(f"{k} {1000 * v / args.big:.3f}" for k, v in cpu.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completions", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=32)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big", type=int, default=100_000, help="0 skips the big array")
    parser.add_argument("--no-pod-job", dest="pod_job", action="store_false",
                        help="skip the Job of Pods (minutes for 2,000 on a small machine)")
    args = parser.parse_args()
    runs = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="corral-bench-batch-") as tmp:
            result = one_run(Path(tmp), args)
        # The baselines right after the cluster, in every run: drift in the machine's
        # load hits them alike.
        result["xargs"] = baseline(args.completions, args.parallelism)
        for peer, run_peer in PEERS.items():
            result[peer] = run_peer(args.completions, args.parallelism)
        runs.append(result)
        print(f"  run {run + 1}: " + ", ".join(
            f"{k} {v:.2f} s" for k, v in result.items() if isinstance(v, float)), flush=True)
    if runs:
        report(args, runs)
    if args.big:
        with tempfile.TemporaryDirectory(prefix="corral-bench-batch-") as tmp:
            big_run(Path(tmp), args)


if __name__ == "__main__":
    stop_on_sigterm()
    main()
