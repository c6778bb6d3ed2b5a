"""Node failure recovery: kill -9 an agent → every pod it ran Running elsewhere.

    a master and 3 real agents, a Deployment of 6 replicas (`sleep`), then per round:
      kill -9 an agent that runs some of them ─► time until 6 pods are Running and
      none is on the dead node ─► restart the agent, wait until it is Ready again

Prints the seconds per round and the median (default 5 rounds), with the node
lifecycle defaults (grace 4 s, eviction 2 s; agents heartbeat every 0.5 s as in the
test harness). Prints figures; never pass/fail. Goal: ≤ 10 s. Every process it
starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corral.objects import Obj
from tests.cluster import Agent, Master, remove_node_homes, stop_on_sigterm

NS = "default"


def deployment(replicas: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "recover"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "recover"}},
                     "template": {"metadata": {"labels": {"app": "recover"}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "c", "image": "none",
                                         "command": ["sleep", "3600"]}]}}}}


def running(http: httpx.Client) -> list[Obj]:
    r = http.get(f"/api/v1/namespaces/{NS}/pods", params={"labelSelector": "app=recover"})
    r.raise_for_status()
    return [p for p in r.json()["items"] if p.get("status", {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


def node_ready(http: httpx.Client, name: str) -> bool:
    node = http.get(f"/api/v1/nodes/{name}").json()
    taints = node.get("spec", {}).get("taints") or []
    ready = [c for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
    return bool(ready) and ready[0]["status"] == "True" and not any(
        t["key"] == "node.kubernetes.io/unreachable" for t in taints)


def wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError("condition not reached")


def one_round(http: httpx.Client, agents: list[Agent], replicas: int) -> float:
    wait(lambda: len(running(http)) == replicas, 120)
    by_node = Counter(p["spec"]["nodeName"] for p in running(http))
    victim = next(a for a in agents if by_node[a.name])
    victim.kill()
    start = time.monotonic()
    wait(lambda: len(r := running(http)) == replicas
         and all(p["spec"]["nodeName"] != victim.name for p in r), 180)
    seconds = time.monotonic() - start
    print(f"  killed {victim.name} ({by_node[victim.name]} pods): all Running elsewhere "
          f"after {seconds:.1f} s", flush=True)
    victim.start()
    wait(lambda: node_ready(http, victim.name), 60)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-recovery-") as tmp:
        master = Master(Path(tmp) / "master").start()
        agents = [Agent(master, f"rec-{i}", Path(tmp) / f"agent-{i}", f"127.0.1.{60 + i}")
                  for i in range(3)]
        try:
            for agent in agents:
                agent.start()
            with master.http() as http:
                http.post(f"/apis/apps/v1/namespaces/{NS}/deployments",
                          json=deployment(args.replicas)).raise_for_status()
                times = [one_round(http, agents, args.replicas) for _ in range(args.rounds)]
        finally:
            for agent in agents:
                agent.cleanup()
            master.stop()
            remove_node_homes()  # agents' state dirs moved out of the 0700 temp dir
    print(f"recovery after kill -9 of a node: median {statistics.median(times):.1f} s "
          f"(min {min(times):.1f}, max {max(times):.1f}, {len(times)} rounds)")


if __name__ == "__main__":
    stop_on_sigterm()
    main()
