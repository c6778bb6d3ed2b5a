"""Garbage-collector pauses of a master under load, with the process's GC tuning
(corral/cli/eventloop.py: start-up frozen, young passes every 50,000 allocations)
and with CPython's defaults, measured in the same run.

Each run starts a fresh `corral master` (controllers on; hollow nodes, never
marked unreachable) for each variant and creates --pods pods (50 requests in
flight) until every one is bound. A sitecustomize module put on the master's
PYTHONPATH times every collector pass (gc.callbacks) and writes them out at
exit; for the baseline it also turns the tuning off. Figures per variant:
passes, seconds stopped in them, p99 and longest pass, full (gen-2) passes;
median of --runs runs, and tuned ÷ default. Prints figures; never pass/fail.
Every process it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scheduler_e2e import create_pods, hollow_node, wait_all_bound
from corral.client.http import Client
from tests.cluster import Master, stop_on_sigterm

HOOK = '''
import atexit, gc, json, os, time
_passes, _start = [], [0.0]
def _timed(phase, info):
    if phase == "start":
        _start[0] = time.perf_counter()
    else:
        _passes.append((info["generation"], time.perf_counter() - _start[0]))
gc.callbacks.append(_timed)
atexit.register(lambda: json.dump(_passes, open(os.environ["BENCH_GC_OUT"], "w")))
if os.environ.get("BENCH_GC_DEFAULTS"):
    import corral.cli.eventloop
    corral.cli.eventloop.tune_gc = lambda: None
'''


async def one_master(base: Path, hook: Path, defaults: bool, nodes: int,
                     pods: int) -> list[tuple[int, float]]:
    out = base / "passes.json"
    env = {**os.environ, "PYTHONPATH": str(hook), "BENCH_GC_OUT": str(out),
           "CORRAL_NODE_GRACE_PERIOD": "100000",  # hollow nodes renew no Lease
           **({"BENCH_GC_DEFAULTS": "1"} if defaults else {})}
    master = Master(base, env=env).start()
    try:
        async with Client.from_kubeconfig(master.kubeconfig) as client:
            for i in range(nodes):
                await client.create(hollow_node(f"hollow-{i}"))
            await asyncio.sleep(1.0)  # the scheduler's informers have the nodes
            await create_pods(client, pods)
            await wait_all_bound(client)
    finally:
        master.stop()
    return [(int(g), float(s)) for g, s in json.loads(out.read_text())]


def figures(passes: list[tuple[int, float]]) -> dict[str, float]:
    times = sorted(s for _, s in passes)
    return {"passes": len(times), "stopped_s": sum(times),
            "p99_ms": times[min(len(times) - 1, int(0.99 * len(times)))] * 1e3,
            "max_ms": times[-1] * 1e3, "full": sum(1 for g, _ in passes if g == 2)}


def show(name: str, runs: list[dict[str, float]]) -> dict[str, float]:
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"  {name:8} {med['passes']:6.0f} passes  {med['stopped_s']:6.2f} s stopped  "
          f"p99 {med['p99_ms']:6.1f} ms  longest {med['max_ms']:6.1f} ms  "
          f"{med['full']:3.0f} full passes")
    return med


async def main(args: argparse.Namespace) -> None:
    results: dict[str, list[dict[str, float]]] = {"default": [], "tuned": []}
    with tempfile.TemporaryDirectory(prefix="corral-bench-gc-") as tmp:
        hook = Path(tmp) / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(HOOK)
        for run in range(args.runs):
            for name, seen in results.items():
                base = Path(tmp) / f"{name}-{run}"
                passes = await one_master(base, hook, name == "default", args.nodes,
                                          args.pods)
                seen.append(figures(passes))
                print(f"run {run + 1} {name}: {json.dumps(seen[-1])}", flush=True)
    print(f"{args.pods} pods on {args.nodes} hollow nodes, median of {args.runs} runs:")
    default, tuned = show("default", results["default"]), show("tuned", results["tuned"])
    print(f"  tuned / default: stopped {tuned['stopped_s'] / default['stopped_s']:.2f}, "
          f"longest {tuned['max_ms'] / default['max_ms']:.2f}")


if __name__ == "__main__":
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args))
