"""The single master on SQLite (no etcd): kill -9 it during a burst of creates,
start it again on the same data dir: every create that got a 2xx is there, the
database passes SQLite's integrity check, and writes go on."""

from __future__ import annotations

import sqlite3

from corral.client.http import Client
from tests.cluster import Master
from tests.integration.ha.conftest import Writers


async def test_sqlite_master_killed_mid_burst_keeps_every_acknowledged_write(
        fresh_master: Master) -> None:
    master = fresh_master
    async with Client(master.url, master.token, master.ca_pem, timeout=10.0) as client:
        writers = Writers(client, "crash", count=8)
        await writers.resumed(200)
        master.kill()
        master.start()
        await writers.resumed(50)  # the same master, back on the same file
        await writers.stop_and_check()
    db = sqlite3.connect(f"file:{master.data_dir / 'state.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
