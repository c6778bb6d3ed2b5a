"""exec and port-forward figures, with the real kubectl: prints figures, never passes or fails.

    .venv/bin/python bench/streams.py [--runs 5] [--requests 200]

On a master and one agent it starts (and stops, with every pod):

    exec          wall time of `kubectl exec POD -- true` (process start to exit,
                  kubectl's own discovery included); baseline: `kubectl get pod POD`,
                  the same client start and round trip without a stream
    port-forward  per request, each on a new connection, through one running
                  `kubectl port-forward` (two SPDY streams per connection, relayed
                  master → agent); baseline: the same requests to the pod's host port

Each figure is the median of --runs runs, with the ratio to its baseline measured
in the same round. No goal is set; on a shared machine the figures say how much
a stream costs, not how fast the machine is.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.objects import status
from tests.cluster import Agent, Master, remove_node_homes, stop_on_sigterm
from tests.integration.services import web
from tests.kubectl import Kubectl


def _seconds(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def _ready_pod(master: Master, node: str) -> tuple[str, int]:
    with master.http() as http:
        assert http.post("/api/v1/namespaces/default/pods",
                         json=web.pod("bench-web", "bench", node)).status_code == 201
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pod = http.get("/api/v1/namespaces/default/pods/bench-web").json()
            mappings = status(pod).get("portMappings") or []
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (status(pod)).get("conditions") or [])
            if ready and mappings:
                return str(mappings[0]["hostIP"]), int(mappings[0]["hostPort"])
            time.sleep(0.1)
    raise SystemExit("the bench pod never became ready")


def _per_request(host: str, port: int, count: int) -> float:
    return _seconds(lambda: [web.fetch(host, port, timeout=20) for _ in range(count)]) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-streams-") as tmp:
        base = Path(tmp)
        master = Master(base / "master").start()
        agent = Agent(master, "bench-node", base / "agent", "127.0.1.31", [])
        try:
            agent.start()
            host, host_port = _ready_pod(master, agent.name)
            kubectl = Kubectl(master, base / "cache")
            kubectl("get", "pod", "bench-web")  # discovery cached before timing
            measure(kubectl, host, host_port, args.runs, args.requests)
        finally:
            agent.cleanup()
            master.stop()
            remove_node_homes()  # agents' state dirs moved out of the 0700 temp dir


def measure(kubectl: Kubectl, host: str, host_port: int, runs: int, requests: int) -> None:
    execs, gets = [], []
    for _ in range(runs):
        gets.append(_seconds(lambda: kubectl("get", "pod", "bench-web")))
        execs.append(_seconds(lambda: kubectl("exec", "bench-web", "--", "true")))
    forward = kubectl.background("port-forward", "pod/bench-web", ":8080")
    try:
        assert forward.stdout is not None
        found = re.search(r"127\.0\.0\.1:(\d+)", forward.stdout.readline())
        assert found, "kubectl port-forward did not start"
        local = int(found.group(1))
        direct, forwarded = [], []
        for _ in range(runs):
            direct.append(_per_request(host, host_port, requests))
            forwarded.append(_per_request("127.0.0.1", local, requests))
    finally:
        forward.kill()
        forward.wait()
    ms = 1000.0
    exec_ratio = statistics.median(e / g for e, g in zip(execs, gets, strict=True))
    pf_ratio = statistics.median(f / d for f, d in zip(forwarded, direct, strict=True))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cpus)")
    print(f"kubectl exec -- true      {statistics.median(execs) * ms:7.1f} ms   "
          f"kubectl get pod {statistics.median(gets) * ms:7.1f} ms   ratio {exec_ratio:.2f}x")
    print(f"port-forward per request  {statistics.median(forwarded) * ms:7.2f} ms   "
          f"direct {statistics.median(direct) * ms:7.2f} ms   ratio {pf_ratio:.1f}x "
          f"({requests} requests a run, a new connection each)")


if __name__ == "__main__":
    stop_on_sigterm()
    main()
