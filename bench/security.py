"""What Secrets at rest and the audit log cost, through real HTTPS against a real
`corral master` on SQLite (the scheduler and controllers off: only the bench writes).

    secret writes   Secrets created per second with the default encryption
                    (secretbox) against the same master config with identity only
    secret reads    Secrets read (GET) per second, the same two ways
    audit           ConfigMaps created per second with the audit log on (the
                    default policy: writes at Request level, body decoded and
                    logged) against audit off

Prints the median of --runs runs and the ratio to its baseline measured in the
same run; never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import run_requests
from tests.cluster import Master, stop_on_sigterm

IDENTITY = b"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources: [{resources: [secrets], providers: [{identity: {}}]}]
"""
QUIET = ["--disable", "scheduler", "--disable", "controllers"]


def _ok(want: int):  # type: ignore[no-untyped-def]
    def check(status: int, body: bytes) -> None:
        assert status == want, body[:300]
    return check


async def _rate(m: Master, requests: list[tuple[str, str, bytes]], want: int,
                concurrency: int) -> float:
    t0 = time.perf_counter()
    await run_requests(m.url, m.token, str(m.ca_path), requests, concurrency, _ok(want))
    return len(requests) / (time.perf_counter() - t0)


async def secrets(m: Master, n: int, concurrency: int, run: int) -> tuple[float, float]:
    base = "/api/v1/namespaces/default/secrets"
    creates = [("POST", base, orjson.dumps({"metadata": {"name": f"s{run}-{i}"},
                                            "stringData": {"pw": "x" * 64}})) for i in range(n)]
    write = await _rate(m, creates, 201, concurrency)
    reads = [("GET", f"{base}/s{run}-{i}", b"") for i in range(n)]
    return write, await _rate(m, reads, 200, concurrency)


async def configmaps(m: Master, n: int, concurrency: int, run: int) -> float:
    base = "/api/v1/namespaces/default/configmaps"
    creates = [("POST", base, orjson.dumps({"metadata": {"name": f"c{run}-{i}"},
                                            "data": {"k": "v" * 64}})) for i in range(n)]
    return await _rate(m, creates, 201, concurrency)


def _master(base: Path, name: str, extra: list[str]) -> Master:
    return Master(base / name, extra_args=[*QUIET, *extra]).start(timeout=60)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--objects", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    stop_on_sigterm()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "identity.yaml").write_bytes(IDENTITY)
        masters = {
            "sealed": _master(base, "sealed", []),
            "plain": _master(base, "plain", ["--encryption-provider-config",
                                             str(base / "identity.yaml")]),
            "audited": _master(base, "audited", ["--audit-log-path", str(base / "audit.log")]),
        }
        try:
            rows: dict[str, list[float]] = {}
            for run in range(args.runs):
                for name in ("sealed", "plain"):
                    w, r = await secrets(masters[name], args.objects, args.concurrency, run)
                    rows.setdefault(f"{name} writes", []).append(w)
                    rows.setdefault(f"{name} reads", []).append(r)
                for name in ("audited", "plain"):
                    rate = await configmaps(masters[name], args.objects, args.concurrency, run)
                    rows.setdefault(f"{name} configmap writes", []).append(rate)
        finally:
            for m in masters.values():
                m.stop()
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"median of {args.runs} runs, {args.objects} objects, {args.concurrency} clients")
    for what, new, old in (("secret writes/s", "sealed writes", "plain writes"),
                           ("secret reads/s", "sealed reads", "plain reads"),
                           ("configmap writes/s", "audited configmap writes",
                            "plain configmap writes")):
        print(f"  {what:20} {med[new]:8.0f} ({new.split()[0]})  vs {med[old]:8.0f} "
              f"({old.split()[0]}): ratio {med[new] / med[old]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
