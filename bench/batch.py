"""Batch throughput: a Job of N completions of `/bin/true` on 4 agents, against
the same N processes launched by `xargs -P` on this box (the raw fork/exec
baseline).

    Job created ─► Complete condition: tasks/s = N / elapsed
    xargs -P P -n 1 /bin/true × N: processes/s
    ratio = Job tasks/s ÷ xargs processes/s

Each figure is the median of --runs runs, every run on a fresh cluster. Prints
figures; never pass/fail. Goal: ratio ≥ 0.5. Every process it starts is stopped
at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cluster import Agent, Master

NS = "default"


def job(completions: int, parallelism: int) -> dict[str, object]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch"},
            "spec": {"completions": completions, "parallelism": parallelism,
                     "backoffLimit": completions,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [
                         {"name": "c", "image": "none", "command": ["/bin/true"]}]}}}}


def run_job(master: Master, completions: int, parallelism: int) -> float:
    with master.http() as http:
        start = time.perf_counter()
        http.post(f"/apis/batch/v1/namespaces/{NS}/jobs",
                  json=job(completions, parallelism)).raise_for_status()
        while True:
            status = http.get(f"/apis/batch/v1/namespaces/{NS}/jobs/batch").json().get(
                "status", {})
            if any(c["type"] in ("Complete", "Failed") and c["status"] == "True"
                   for c in status.get("conditions", [])):
                elapsed = time.perf_counter() - start
                print(f"  job: succeeded {status.get('succeeded')} failed "
                      f"{status.get('failed', 0)} in {elapsed:.1f} s", flush=True)
                return elapsed
            time.sleep(0.2)


def baseline(total: int, parallel: int) -> float:
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", str(parallel), "-n", "1", "/bin/true"],
                   input="\n".join(["x"] * total), text=True, check=True)
    return time.perf_counter() - start


def run_cluster(tmp: Path, completions: int, parallelism: int, n_agents: int) -> float:
    master = Master(tmp / "master").start()
    agents = [Agent(master, f"batch-{i}", tmp / f"agent-{i}", f"127.0.1.{70 + i}",
                    ["--pods", str(completions)]) for i in range(n_agents)]
    try:
        for agent in agents:
            agent.start()
        return run_job(master, completions, parallelism)
    finally:
        for agent in agents:
            agent.cleanup()
        master.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completions", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=100)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    job_runs, raw_runs = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="corral-bench-batch-") as tmp:
            job_runs.append(run_cluster(Path(tmp), args.completions, args.parallelism,
                                        args.agents))
        raw_runs.append(baseline(args.completions, args.parallelism))
        print(f"  run {run + 1}: job {job_runs[-1]:.1f} s, xargs {raw_runs[-1]:.2f} s",
              flush=True)
    elapsed, raw = statistics.median(job_runs), statistics.median(raw_runs)
    job_rate, raw_rate = args.completions / elapsed, args.completions / raw
    print(f"job of {args.completions} × /bin/true, parallelism {args.parallelism}, "
          f"{args.agents} agents: {job_rate:.1f} tasks/s ({elapsed:.1f} s, median of "
          f"{args.runs})")
    print(f"xargs -P {args.parallelism}: {raw_rate:.0f} processes/s ({raw:.2f} s)")
    print(f"ratio {job_rate / raw_rate:.3f} (goal ≥ 0.5)")


if __name__ == "__main__":
    main()
