"""API server figures on SQLite, through real HTTPS against a real `corral master`.

    create throughput   objects/s, concurrent clients creating ConfigMaps
    update throughput   objects/s, concurrent PUTs with resourceVersion
    watch fan-out       p50/p99 delay from write acknowledged to event delivered,
                        at N concurrent watch streams
    list latency        a full list of 10,000 pods (JSON and Table)

Prints figures (median of --runs runs); never pass/fail. Goals on a 2-core box:
≥ 2,000 writes/s, fan-out p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import Connection, run_requests, watch_lines
from tests.cluster import Master


def _client(m: Master, connections: int) -> httpx.AsyncClient:
    ctx = ssl.create_default_context(cafile=str(m.ca_path))
    return httpx.AsyncClient(
        base_url=m.url, verify=ctx, headers={"Authorization": f"Bearer {m.token}"},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=60.0,
    )


async def _ensure_ns(c: httpx.AsyncClient, name: str) -> None:
    r = await c.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert r.status_code in (201, 409), r.text


async def bench_writes(m: Master, total: int, concurrency: int, run: int) -> tuple[float, float]:
    """Creates, then updates (PUT with the resourceVersion each create returned)."""
    ns = f"w{run}"
    async with _client(m, 4) as c:
        await _ensure_ns(c, ns)
    base = f"/api/v1/namespaces/{ns}/configmaps"
    created: list[dict[str, Any]] = []

    def created_ok(status: int, body: bytes) -> None:
        assert status == 201, body[:300]
        created.append(orjson.loads(body))

    creates = [("POST", base, orjson.dumps({"metadata": {"name": f"cm-{i}"},
                                            "data": {"i": str(i)}})) for i in range(total)]
    t0 = time.perf_counter()
    await run_requests(m.url, m.token, str(m.ca_path), creates, concurrency, created_ok)
    create_rate = total / (time.perf_counter() - t0)

    def updated_ok(status: int, body: bytes) -> None:
        assert status == 200, body[:300]

    updates = []
    for obj in created:
        obj["data"]["i"] += "-u"
        updates.append(("PUT", f"{base}/{obj['metadata']['name']}", orjson.dumps(obj)))
    t0 = time.perf_counter()
    await run_requests(m.url, m.token, str(m.ca_path), updates, concurrency, updated_ok)
    update_rate = total / (time.perf_counter() - t0)
    return create_rate, update_rate


async def bench_fanout(m: Master, watchers: int, events: int, run: int) -> list[float]:
    ns = f"f{run}"
    delays: list[float] = []
    sent: dict[str, float] = {}
    async with _client(m, watchers + 4) as c:
        await _ensure_ns(c, ns)
        rv = (await c.get(f"/api/v1/namespaces/{ns}/configmaps")).json()["metadata"][
            "resourceVersion"]
        ready = 0
        all_ready = asyncio.Event()

        async def watcher() -> None:
            nonlocal ready
            url = (f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}"
                   "&timeoutSeconds=120")
            conn = await Connection.open(m.url, m.token, str(m.ca_path))
            try:
                lines = watch_lines(conn, url)
                ready += 1
                if ready == watchers:
                    all_ready.set()
                got = 0
                async for line in lines:
                    name = orjson.loads(line)["object"]["metadata"]["name"]
                    delays.append(time.perf_counter() - sent[name])
                    got += 1
                    if got == events:
                        return
            finally:
                conn.close()

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 120)
        await asyncio.sleep(0.5)
        for i in range(events):
            name = f"e{i}"
            sent[name] = time.perf_counter()
            r = await c.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": name}})
            assert r.status_code == 201
            await asyncio.sleep(0.05)
        await asyncio.wait_for(asyncio.gather(*tasks), 300)
    return delays


async def bench_list(m: Master, pods: int) -> tuple[float, float]:
    async with _client(m, 64) as c:
        await _ensure_ns(c, "big")
        have = len((await c.get("/api/v1/namespaces/big/pods")).json()["items"])
        sem = asyncio.Semaphore(64)

        async def create(i: int) -> None:
            async with sem:
                r = await c.post("/api/v1/namespaces/big/pods", json={
                    "metadata": {"name": f"p{i}", "labels": {"app": "big"}},
                    "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"]}]}})
                assert r.status_code == 201, r.text

        await asyncio.gather(*(create(i) for i in range(have, pods)))
        t0 = time.perf_counter()
        r = await c.get("/api/v1/pods")
        plain = time.perf_counter() - t0
        assert len(r.json()["items"]) >= pods
        t0 = time.perf_counter()
        await c.get("/api/v1/pods", headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
        table = time.perf_counter() - t0
    return plain, table


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--writes", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--pods", type=int, default=10000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        m = Master(Path(tmp) / "master").start()
        try:
            creates, updates, p50s, p99s = [], [], [], []
            for run in range(args.runs):
                cr, ur = await bench_writes(m, args.writes, args.concurrency, run)
                creates.append(cr)
                updates.append(ur)
                print(f"run {run}: create {cr:,.0f}/s update {ur:,.0f}/s", flush=True)
            for run in range(args.runs):
                d = await bench_fanout(m, args.watchers, args.events, run)
                p50s.append(pct(d, 0.5) * 1000)
                p99s.append(pct(d, 0.99) * 1000)
                print(f"run {run}: fan-out to {args.watchers} watchers: p50 {p50s[-1]:.1f} ms "
                      f"p99 {p99s[-1]:.1f} ms ({len(d)} deliveries)", flush=True)
            lists = [await bench_list(m, args.pods) for _ in range(args.runs)]
        finally:
            m.stop()
    med = statistics.median
    print("\n== corral API on SQLite (median of runs) ==")
    print(f"create throughput:   {med(creates):8,.0f} objects/s   (goal >= 2,000; "
          f"ratio {med(creates) / 2000:.2f})")
    print(f"update throughput:   {med(updates):8,.0f} objects/s   (goal >= 2,000; "
          f"ratio {med(updates) / 2000:.2f})")
    print(f"watch fan-out p50:   {med(p50s):8.1f} ms at {args.watchers} watchers")
    print(f"watch fan-out p99:   {med(p99s):8.1f} ms   (goal <= 100 ms)")
    print(f"list {args.pods} pods:     {med([x[0] for x in lists]) * 1000:8.0f} ms (JSON), "
          f"{med([x[1] for x in lists]) * 1000:.0f} ms (Table)")


if __name__ == "__main__":
    asyncio.run(main())
