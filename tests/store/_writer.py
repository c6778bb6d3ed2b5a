"""Durability test helper: write keys forever, print each one once acknowledged.

    python tests/store/_writer.py DB_PATH [WRITERS]

Each line on stdout is a key whose create() has returned: the store promised it
is on disk. The test SIGKILLs this process mid-stream and checks every printed
key survived.
"""

from __future__ import annotations

import asyncio
import sys

from corral.store.sqlite import SqliteStore


async def write_forever(store: SqliteStore, writer: int) -> None:
    i = 0
    while True:
        key = f"/durable/{writer}/{i}"
        await store.create(key, key.encode())
        sys.stdout.write(key + "\n")
        sys.stdout.flush()
        i += 1


async def main(path: str, writers: int) -> None:
    store = await SqliteStore.open(path, compact_interval=0.0)
    try:
        await asyncio.gather(*(write_forever(store, w) for w in range(writers)))
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20))
