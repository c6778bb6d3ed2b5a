"""Soak: a master under attack keeps serving everyone else.

200 concurrent writers, 2,000 idle TCP connections and 200 idle TLS ones
(reopened as the server closes them) and a slowloris client, from another process (bench/attack.py), for
CORRAL_SOAK_SECONDS (30 in CI; set it higher for a longer soak). Meanwhile a
client doing normal work over its connection must be answered: no 5xx, no 429,
each request within a generous bound (the machine is shared; the benchmark
reports the p99); the real kubectl must get answers (see below for its new
connections); every acknowledged write is kept, and the master's memory stays
under MEMORY_BOUND.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench.attack import soak
from tests.cluster import Master

SECONDS = float(os.environ.get("CORRAL_SOAK_SECONDS", "30"))
MEMORY_BOUND = 1536 * 1024 * 1024  # an idle master holds ~150 MiB
LATENCY_BOUND = 10.0  # seconds; the goal, 1 s at p99, is bench/api.py's to report


def test_master_under_attack_serves_normal_requests(tmp_path: Path) -> None:
    master = Master(tmp_path / "master").start()
    kubectl_runs: list[subprocess.CompletedProcess[str]] = []
    env = {**os.environ, "KUBECONFIG": str(master.kubeconfig),
           "KUBECACHEDIR": str(tmp_path / "kube-cache")}

    def kubectl() -> None:
        """One kubectl command every few seconds; it may be tried three times, as a
        user would (a shared machine)."""
        if len(kubectl_runs) >= SECONDS / 5:
            return
        for _ in range(3):
            run = subprocess.run(["kubectl", "get", "configmaps", "-n", "default", "-o", "name",
                                  "--request-timeout", "30s"], check=False, env=env,
                                 capture_output=True, text=True, timeout=60)
            if run.returncode == 0:
                break
        kubectl_runs.append(run)

    try:
        assert master.proc is not None
        with master.http() as http:
            assert http.post("/api/v1/namespaces", json={"metadata": {"name": "soak"}}
                             ).status_code == 201
        result = soak(master.url, master.token, str(master.ca_path), master.proc.pid,
                      SECONDS, every=kubectl)
        attack = result.attack
        writes: dict[str, int] = attack["statuses"]  # type: ignore[assignment]
        # The attack ran at the size it claims, and was refused only by the rules.
        assert writes.get("201", 0) > 0, attack
        assert set(writes) <= {"201", "429"}, writes
        idle: dict[str, int] = attack["idle_max_open"]  # type: ignore[assignment]
        assert idle.get("idle_tcp", 0) >= 1500 and idle.get("idle_tls", 0) >= 100, idle
        closed_after = attack["slowloris_closed_after"]
        assert closed_after is not None and float(closed_after) < 40, attack  # type: ignore[arg-type]
        # Everyone else was served.
        assert result.statuses and set(result.statuses) == {200}, result.statuses
        worst = sorted(zip(result.latencies, result.started, strict=True))[-5:]
        assert max(result.latencies) < LATENCY_BOUND, (worst, len(result.latencies))
        # kubectl opens a new TLS connection per command, with a fixed 10 s handshake
        # limit: it used to time out queued behind the attacker's idle connections
        # (libuv accepted one per turn of the saturated loop; api/listener.py).
        failed = [r.stderr for r in kubectl_runs if r.returncode]
        assert kubectl_runs and not failed, failed
        assert result.peak_rss < MEMORY_BOUND, result.peak_rss
        # Nothing acknowledged was lost, and the master is still ready.
        with master.http() as http:
            stored = {cm["metadata"]["name"] for cm in http.get(
                "/api/v1/namespaces/soak/configmaps").json()["items"]}
            assert set(attack["acknowledged"]) <= stored  # type: ignore[call-overload]
            assert http.get("/readyz").status_code == 200
    finally:
        master.stop()
