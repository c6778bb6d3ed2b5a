"""The shim's pieces without a command: line pumping, the exclusive pid file."""

from __future__ import annotations

import os
from pathlib import Path

from corral.agent.runtime.logs import MAX_LINE, LogFiles, LogWriter, log_path
from corral.agent.runtime.shim import LinePump, StateDir, process_start_ticks


def _pump(tmp_path: Path) -> tuple[LinePump, LogWriter]:
    writer = LogWriter(log_path(tmp_path, 0), 10 * MAX_LINE, 2)
    return LinePump("stdout", writer), writer


def test_pump_splits_chunks_into_lines_and_keeps_the_unfinished_one(tmp_path: Path) -> None:
    pump, writer = _pump(tmp_path)
    for chunk in (b"hel", b"lo\nwor", b"ld\n\nlast"):
        pump.feed(chunk)
    assert LogFiles(tmp_path).read(0) == ["hello", "world", ""]
    pump.finish()
    writer.close()
    assert LogFiles(tmp_path).read(0) == ["hello", "world", "", "last"]


def test_pump_writes_an_endless_line_as_partial_records(tmp_path: Path) -> None:
    pump, writer = _pump(tmp_path)
    pump.feed(b"x" * (MAX_LINE * 2 + 5))
    pump.feed(b"\n")
    writer.close()
    records = log_path(tmp_path, 0).read_text().splitlines()
    assert [r.split(" ")[2] for r in records] == ["P", "P", "F"]
    assert LogFiles(tmp_path).read(0) == ["x" * (MAX_LINE * 2 + 5)]


def test_only_the_first_claim_of_a_state_dir_wins(tmp_path: Path) -> None:
    state_dir = StateDir(tmp_path)
    assert state_dir.claim()
    assert not state_dir.claim()
    assert state_dir.read_shim_identity() == (os.getpid(), process_start_ticks(os.getpid()))
    assert [p.name for p in tmp_path.iterdir()] == ["shim.pid"]  # no temp file left


def test_old_style_pid_file_reads_without_a_start_time(tmp_path: Path) -> None:
    state_dir = StateDir(tmp_path)
    state_dir.pid_file.write_text("4242")
    assert state_dir.read_shim_identity() == (4242, None)
    assert state_dir.read_shim_pid() == 4242


def test_start_ticks_tell_processes_apart() -> None:
    assert process_start_ticks(os.getpid()) is not None
    assert process_start_ticks(1) != process_start_ticks(os.getpid())
    assert process_start_ticks(2**22 + 1) is None  # above pid_max: no such process
