"""An acknowledged write survives the process being killed (SIGKILL) mid-stream,
and a reopened store carries on from the revision it had reached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from corral.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("_writer.py")
ACKS_BEFORE_KILL = 2000


def _start_writer(db: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(WRITER), str(db), "20"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_mid_stream(proc: subprocess.Popen[str]) -> list[str]:
    """Read acknowledged keys until ACKS_BEFORE_KILL, SIGKILL the writer, and
    return every complete line it printed (the pipe holds some after the kill)."""
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    try:
        while len(lines) < ACKS_BEFORE_KILL:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(lines) == ACKS_BEFORE_KILL, f"writer stopped early: {proc.stderr.read()}"
    lines += proc.stdout.readlines()
    proc.stdout.close()
    proc.stderr.close()
    return [line[:-1] for line in lines if line.endswith("\n")]


async def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    acked = _kill_mid_stream(_start_writer(db))
    store = await SqliteStore.open(db, compact_interval=0.0)
    try:
        missing = [key for key in acked if await store.get(key) is None]
        assert missing == []
        present = await store.list("/durable/")
        assert len(present.items) >= len(acked)
        assert present.revision == len(present.items)  # one revision per create, no holes
        assert await store.create("/after-restart", b"x") == present.revision + 1
    finally:
        await store.close()


async def test_revision_survives_reopen_even_when_compaction_emptied_the_log(
        tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = await SqliteStore.open(db, compact_interval=0.0)
    await store.create("/k", b"1")
    deleted = await store.delete("/k")
    await store.compact(deleted)  # removes every log row: the tombstone is the newest
    await store.close()
    store = await SqliteStore.open(db, compact_interval=0.0)
    try:
        assert await store.current_revision() == deleted
        assert await store.compacted_revision() == deleted
        assert await store.create("/k", b"2") == deleted + 1
    finally:
        await store.close()
