"""Log files: CRI lines, rotation, tail, timestamps, previous instance, follow."""

from __future__ import annotations

import asyncio
from pathlib import Path

from corral.agent.runtime.logs import MAX_LINE, LogFiles, LogWriter, log_path
from tests.poll import eventually


def test_lines_are_cri_records_and_read_back(tmp_path: Path) -> None:
    writer = LogWriter(log_path(tmp_path, 0), max_bytes=1 << 20, max_files=2)
    writer.write_line("stdout", b"hello")
    writer.write_line("stderr", b"oops")
    writer.close()
    raw = log_path(tmp_path, 0).read_text().splitlines()
    assert raw[0].endswith("Z stdout F hello") and raw[1].endswith("Z stderr F oops")
    files = LogFiles(tmp_path)
    assert files.read(0) == ["hello", "oops"]
    assert files.read(0, tail=1) == ["oops"]
    assert files.read(0, tail=0) == []
    stamped = files.read(0, timestamps=True)
    assert stamped[0].split(" ")[0] == raw[0].split(" ")[0] and stamped[0].endswith(" hello")


def test_long_lines_are_split_and_joined_again(tmp_path: Path) -> None:
    writer = LogWriter(log_path(tmp_path, 0), max_bytes=1 << 20, max_files=1)
    long = b"x" * (2 * MAX_LINE + 5)
    writer.write_line("stdout", long)
    writer.close()
    assert len(log_path(tmp_path, 0).read_text().splitlines()) == 3
    assert LogFiles(tmp_path).read(0) == [long.decode()]


def test_rotation_keeps_max_files_each_under_max_bytes(tmp_path: Path) -> None:
    writer = LogWriter(log_path(tmp_path, 3), max_bytes=500, max_files=3)
    for i in range(100):
        writer.write_line("stdout", f"line {i}".encode())
    writer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["3.log", "3.log.1", "3.log.2"]
    assert all(p.stat().st_size <= 500 for p in tmp_path.iterdir())
    lines = LogFiles(tmp_path).read(3)
    assert lines[-1] == "line 99"
    assert lines == [f"line {i}" for i in range(100 - len(lines), 100)]  # in order


def test_current_and_previous_instance(tmp_path: Path) -> None:
    for attempt in (4, 5):
        writer = LogWriter(log_path(tmp_path, attempt), 1 << 20, 1)
        writer.write_line("stdout", f"attempt {attempt}".encode())
        writer.close()
    files = LogFiles(tmp_path)
    assert (files.instance(), files.instance(previous=True)) == (5, 4)
    files.prune(keep_from_attempt=5)
    assert files.instance(previous=True) is None
    assert LogFiles(tmp_path / "none").instance() is None


async def test_follow_sees_new_lines_across_rotation(tmp_path: Path) -> None:
    writer = LogWriter(log_path(tmp_path, 0), max_bytes=300, max_files=5)
    writer.write_line("stdout", b"before-1")
    writer.write_line("stdout", b"before-2")
    done = False
    seen: list[str] = []

    async def follow() -> None:
        async for line in LogFiles(tmp_path).follow(0, tail=1, finished=lambda: done,
                                                    poll_seconds=0.01):
            seen.append(line)

    task = asyncio.create_task(follow())
    await eventually(lambda: seen == ["before-2"], timeout=5, what="the tail line")
    for i in range(30):  # enough to rotate several times
        writer.write_line("stdout", f"after-{i}".encode())
        await asyncio.sleep(0.002)
    writer.close()
    done = True
    await asyncio.wait_for(task, 10)
    assert seen == ["before-2"] + [f"after-{i}" for i in range(30)]


async def test_follow_waits_for_a_file_not_yet_written(tmp_path: Path) -> None:
    done = False

    async def first_line() -> list[str]:
        return [line async for line in LogFiles(tmp_path).follow(
            0, finished=lambda: done, poll_seconds=0.01)]

    task = asyncio.create_task(first_line())
    await asyncio.sleep(0.03)
    writer = LogWriter(log_path(tmp_path, 0), 1 << 20, 1)
    writer.write_line("stdout", b"late")
    writer.close()
    await asyncio.sleep(0.05)
    done = True
    assert await asyncio.wait_for(task, 10) == ["late"]


async def test_follow_catches_up_after_several_rotations_between_polls(tmp_path: Path) -> None:
    writer = LogWriter(log_path(tmp_path, 0), max_bytes=200, max_files=10)
    writer.write_line("stdout", b"start")
    follower = LogFiles(tmp_path).follow(0, poll_seconds=0.01)
    assert await asyncio.wait_for(anext(follower), 5) == "start"
    for i in range(20):  # several rotations while the follower is not polling
        writer.write_line("stdout", f"burst-{i}".encode())
    writer.close()
    assert len(list(tmp_path.iterdir())) > 3
    seen = [await asyncio.wait_for(anext(follower), 5) for _ in range(20)]
    await follower.aclose()
    assert seen == [f"burst-{i}" for i in range(20)]
