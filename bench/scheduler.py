"""Scheduling-core benchmark: simulated nodes, pending pods, in-process, one core.

    .venv/bin/python bench/scheduler.py                  # 5,000 nodes, 50,000 pods
    .venv/bin/python bench/scheduler.py --nodes 500 --pods 5000 --runs 3
    .venv/bin/python bench/scheduler.py --profile        # cProfile of one run

Prints figures, never pass/fail:
  * placements/s with every speed technique on (median of --runs runs); a
    placement is: parse the Pod dict, schedule(), assume the pod on the node
  * the same pods with the techniques off, one at a time and all together, on
    the first --prefix pods (all-off scans every node and recounts node usage
    per decision, so it is far too slow for the whole workload)
  * placement quality: cpu and memory utilization, pods left pending although
    the cluster has room for them
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.scheduler.core import CoreMemory, SchedulerOptions, schedule
from corral.scheduler.requirements import pod_requirements
from corral.scheduler.snapshot import ClusterSnapshot

GI = 1024**3
Pod = dict[str, Any]


# ---- workload ---------------------------------------------------------------------------

def make_node(i: int, rng: random.Random) -> dict[str, Any]:
    """Mostly 16-core machines; some big, some small; 4% GPU machines tainted
    for GPU work; 30% with SSDs; a few prefer-not tainted."""
    roll = rng.random()
    cpu, mem = (32, 128) if roll < 0.2 else (8, 32) if roll < 0.3 else (16, 64)
    labels = {"topology.kubernetes.io/zone": f"zone-{i % 3}",
              "disktype": "ssd" if rng.random() < 0.3 else "hdd"}
    allocatable = {"cpu": str(cpu), "memory": f"{mem}Gi", "pods": "110",
                   "ephemeral-storage": "200Gi"}
    taints = []
    if i % 25 == 0:
        labels["accelerator"] = "nvidia"
        allocatable["nvidia.com/gpu"] = "8"
        taints.append({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"})
    elif i % 40 == 1:
        taints.append({"key": "spot", "value": "true", "effect": "PreferNoSchedule"})
    return {
        "metadata": {"name": f"node-{i:05d}", "labels": labels},
        "spec": {"taints": taints},
        "status": {"allocatable": allocatable,
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def make_shapes(count: int, rng: random.Random) -> list[Pod]:
    """Distinct pod templates (one owner each, like ReplicaSets)."""
    cpus = ["100m", "250m", "500m", "750m", "1", "1500m", "2", "4"]
    mems = ["128Mi", "256Mi", "512Mi", "1Gi", "2Gi", "3Gi", "4Gi", "8Gi"]
    shapes = []
    for s in range(count):
        spec: dict[str, Any] = {"containers": [{"name": "app", "resources": {"requests": {
            "cpu": rng.choice(cpus), "memory": rng.choice(mems)}}}]}
        roll = rng.random()
        if roll < 0.02:
            spec["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "1"}
            spec["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                    "effect": "NoSchedule"}]
            spec["nodeSelector"] = {"accelerator": "nvidia"}
        elif roll < 0.12:
            spec["nodeSelector"] = {"disktype": "ssd"}
        elif roll < 0.20:
            spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{
                    "key": "topology.kubernetes.io/zone", "operator": "In",
                    "values": ["zone-0", "zone-1"]}]}]}}}
        elif roll < 0.25:
            spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [
                    {"key": "disktype", "operator": "In", "values": ["ssd"]}]}}]}}
        shapes.append({"metadata": {"namespace": "bench", "labels": {"app": f"shape-{s}"},
                                    "ownerReferences": [{"uid": f"rs-{s}", "controller": True,
                                                         "kind": "ReplicaSet"}]},
                       "spec": spec})
    return shapes


def make_pods(count: int, shapes: list[Pod], rng: random.Random) -> list[Pod]:
    # Popular shapes are popular: a skewed choice, like real replica counts.
    weights = [1.0 / (1 + i % 50) for i in range(len(shapes))]
    pods = []
    for i, shape in enumerate(rng.choices(shapes, weights, k=count)):
        meta = dict(shape["metadata"], name=f"pod-{i:06d}", uid=f"uid-{i}")
        pods.append({"metadata": meta, "spec": shape["spec"]})
    return pods


@dataclass
class Workload:
    nodes: list[dict[str, Any]]
    pods: list[Pod]


def make_workload(nodes: int, pods: int, shapes: int, seed: int) -> Workload:
    rng = random.Random(seed)
    node_objs = [make_node(i, rng) for i in range(nodes)]
    return Workload(node_objs, make_pods(pods, make_shapes(shapes, rng), rng))


# ---- running ------------------------------------------------------------------------------

@dataclass
class Result:
    seconds: float
    placed: int
    pending: int
    snapshot: ClusterSnapshot

    @property
    def rate(self) -> float:
        return (self.placed + self.pending) / self.seconds


def run(work: Workload, pods: list[Pod], options: SchedulerOptions,
        incremental: bool = True) -> Result:
    snapshot = ClusterSnapshot(incremental=incremental)
    for node in work.nodes:
        snapshot.add_node(node)
    placed = pending = 0
    memory = CoreMemory()
    started = time.perf_counter()
    for pod in pods:
        req = pod_requirements(pod)
        decision = schedule(snapshot, req, options, memory)
        if decision.node is None:
            pending += 1
        else:
            snapshot.add_pod(req, decision.node)
            placed += 1
    return Result(time.perf_counter() - started, placed, pending, snapshot)


def utilization(snapshot: ClusterSnapshot) -> tuple[float, float]:
    for node in snapshot.nodes:
        if not snapshot.incremental:
            node.recount()
    cpu = sum(n.cpu for n in snapshot.nodes) / sum(n.alloc_cpu for n in snapshot.nodes)
    mem = sum(n.memory for n in snapshot.nodes) / sum(n.alloc_memory for n in snapshot.nodes)
    return cpu, mem


def demand(work: Workload) -> tuple[float, float]:
    """Total requests over total allocatable: below 1 means capacity suffices."""
    reqs = [pod_requirements(p) for p in work.pods]
    snapshot = ClusterSnapshot()
    for node in work.nodes:
        snapshot.add_node(node)
    cpu = sum(r.cpu for r in reqs) / sum(n.alloc_cpu for n in snapshot.nodes)
    mem = sum(r.memory for r in reqs) / sum(n.alloc_memory for n in snapshot.nodes)
    return cpu, mem


def pending_with_room(snapshot: ClusterSnapshot, work: Workload) -> int:
    """Pods not placed for which some node still has room right now."""
    placed = {p.key for p in snapshot.all_pods()}
    left = [p for p in work.pods
            if f"{p['metadata']['namespace']}/{p['metadata']['name']}" not in placed]
    options = SchedulerOptions(percentage_of_nodes_to_score=100)
    return sum(1 for p in left if schedule(snapshot, p, options).node is not None)


VARIANTS: list[tuple[str, dict[str, Any], bool]] = [
    ("equivalence classes off", {"equivalence_classes": False}, True),
    ("score cache off", {"score_cache": False}, True),
    ("sampling off (score all)", {"percentage_of_nodes_to_score": 100}, True),
    ("incremental accounting off", {}, False),
    ("all four off", {"equivalence_classes": False, "score_cache": False,
                      "percentage_of_nodes_to_score": 100}, False),
]


def ablation(work: Workload, prefix: int, seed: int) -> None:
    pods = work.pods[:prefix]
    base = run(work, pods, SchedulerOptions(rng=random.Random(seed)))
    print(f"\nfirst {len(pods):,} pods, one technique off at a time:")
    print(f"  {'all on':<28} {base.rate:>10,.0f} placements/s")
    for name, changes, incremental in VARIANTS:
        options = replace(SchedulerOptions(rng=random.Random(seed)), **changes)
        result = run(work, pods, options, incremental)
        print(f"  {name:<28} {result.rate:>10,.0f} placements/s   "
              f"all-on is {base.rate / result.rate:,.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=50000)
    parser.add_argument("--shapes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefix", type=int, default=1000,
                        help="pods for the techniques-off comparison")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bin-pack", action="store_true", help="most-allocated scoring")
    parser.add_argument("--profile", action="store_true", help="cProfile one run instead")
    args = parser.parse_args()

    work = make_workload(args.nodes, args.pods, args.shapes, args.seed)
    options = SchedulerOptions(bin_pack=args.bin_pack, rng=random.Random(args.seed))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, work, work.pods, options)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    cpu_demand, mem_demand = demand(work)
    print(f"{args.nodes:,} nodes, {args.pods:,} pods of {args.shapes} shapes; requests are "
          f"{cpu_demand:.0%} of cpu and {mem_demand:.0%} of memory allocatable")
    results = [run(work, work.pods, replace(options, rng=random.Random(args.seed + r)))
               for r in range(args.runs)]
    rates = sorted(r.rate for r in results)
    last = results[-1]
    cpu, mem = utilization(last.snapshot)
    print(f"all techniques on: {statistics.median(rates):,.0f} placements/s "
          f"(median of {len(rates)}; runs {', '.join(f'{r:,.0f}' for r in rates)})")
    print(f"placed {last.placed:,}, pending {last.pending:,}; "
          f"utilization cpu {cpu:.1%}, memory {mem:.1%}")
    print(f"pending although the cluster has room: {pending_with_room(last.snapshot, work):,}")
    ablation(work, min(args.prefix, args.pods), args.seed)


if __name__ == "__main__":
    main()
