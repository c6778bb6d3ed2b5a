"""Store benchmark: prints figures, never passes or fails.

    .venv/bin/python bench/store.py [--writers 50] [--writes 10000] [--watchers 1000]

Measures group-committed write throughput (creates, then compare-and-swap
updates), the same with watchers attached, and get/list latency over 10,000+ keys.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from corral.store.base import Store
from corral.store.sqlite import SqliteStore


async def creates(store: Store, writers: int, total: int, prefix: str) -> float:
    per = total // writers

    async def writer(w: int) -> None:
        for i in range(per):
            await store.create(f"{prefix}{w:03d}/{i:06d}", b"x" * 512)

    began = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return writers * per / (time.perf_counter() - began)


async def updates(store: Store, writers: int, total: int) -> float:
    per = total // writers
    revs = [await store.create(f"/bench/cas/{w}", b"0") for w in range(writers)]

    async def writer(w: int) -> None:
        rev = revs[w]
        for i in range(per):
            rev = await store.update(f"/bench/cas/{w}", str(i).encode(), rev)

    began = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return writers * per / (time.perf_counter() - began)


async def with_watchers(store: Store, writers: int, total: int, watchers: int) -> float:
    watches = [store.watch("/bench/w/") for _ in range(watchers)]
    received = [0] * watchers

    async def drain(i: int) -> None:
        async for _ in watches[i]:
            received[i] += 1
            if received[i] == total:
                return

    drains = [asyncio.create_task(drain(i)) for i in range(watchers)]
    began = time.perf_counter()
    await creates(store, writers, total, "/bench/w/")
    await asyncio.wait_for(asyncio.gather(*drains), 120)
    return total / (time.perf_counter() - began)


async def read_latency(store: Store, rounds: int = 20) -> tuple[float, float, float]:
    rev = await store.current_revision()
    timings = []
    for call in (lambda: store.get("/bench/c/000/000001"),
                 lambda: store.list("/bench/c/"),
                 lambda: store.list("/bench/c/", revision=rev - 100)):
        began = time.perf_counter()
        for _ in range(rounds):
            await call()
        timings.append((time.perf_counter() - began) / rounds * 1000)
    return timings[0], timings[1], timings[2]


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteStore.open(Path(tmp) / "bench.db", compact_interval=0.0)
        try:
            rate = await creates(store, args.writers, args.writes, "/bench/c/")
            print(f"creates   {args.writers} writers: {rate:8.0f} writes/s")
            rate = await updates(store, args.writers, args.writes)
            print(f"CAS update {args.writers} writers: {rate:8.0f} writes/s")
            rate = await with_watchers(store, args.writers, args.writes // 5, args.watchers)
            print(f"creates with {args.watchers} watchers receiving all: {rate:8.0f} writes/s")
            get_ms, list_ms, old_ms = await read_latency(store)
            keys = len((await store.list("/bench/c/")).items)
            print(f"get {get_ms:.2f} ms; list {keys} keys {list_ms:.1f} ms; "
                  f"list at old revision {old_ms:.1f} ms")
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--writes", type=int, default=10000)
    parser.add_argument("--watchers", type=int, default=1000)
    asyncio.run(main(parser.parse_args()))
