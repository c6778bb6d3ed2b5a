"""Container logs: written by the shim, read by the agent's log server.

Layout, per container directory (``ContainerLaunch.log_dir``)::

    <attempt>.log        the instance's current file
    <attempt>.log.1 ..   rotated, .1 the newest; at most max_files files in all

Each line is in the CRI format the kubelet uses, so stdout and stderr share one
ordered file and every line carries its own time::

    2024-05-01T10:00:00.123456789Z stdout F hello
    (tag F = full line, P = partial: a chunk of a line longer than MAX_LINE)

Rotation happens in the writer (the shim reads the child through pipes), not by
copy-truncate: copy-truncate loses lines written between the copy and the
truncate and cannot timestamp lines, while a pipe reader knows line boundaries.
The cost is that the shim must outlive its child, which it does by design.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024
_FILE = re.compile(r"^(\d+)\.log(?:\.(\d+))?$")


def log_path(log_dir: str | Path, attempt: int) -> Path:
    return Path(log_dir) / f"{attempt}.log"


def rfc3339_nano(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class LogWriter:
    """Appends CRI lines to one instance's file, rotating by size."""

    def __init__(self, path: Path, max_bytes: int, max_files: int) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.max_files = max(1, max_files)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - lives with the writer
        self._size = self._file.tell()

    def write_line(self, stream: str, content: bytes, partial: bool = False) -> None:
        """Write one line (content without its newline); long lines are split."""
        for start in range(0, max(len(content), 1), MAX_LINE):
            chunk = content[start:start + MAX_LINE]
            last = start + MAX_LINE >= len(content)
            tag = b"P" if partial or not last else b"F"
            stamp = rfc3339_nano(time.time_ns()).encode()
            self._append(b"%s %s %s %s\n" % (stamp, stream.encode(), tag, chunk))

    def _append(self, record: bytes) -> None:
        if self._size > 0 and self._size + len(record) > self.max_bytes:
            self._rotate()
        self._file.write(record)
        self._file.flush()
        self._size += len(record)

    def _rotate(self) -> None:
        self._file.close()
        oldest = self.max_files - 1
        if oldest == 0:
            self.path.unlink(missing_ok=True)
        else:
            Path(f"{self.path}.{oldest}").unlink(missing_ok=True)
            for n in range(oldest - 1, 0, -1):
                src = Path(f"{self.path}.{n}")
                if src.exists():
                    src.rename(f"{self.path}.{n + 1}")
            self.path.rename(f"{self.path}.1")
        self._file = open(self.path, "ab")  # noqa: SIM115 - lives with the writer
        self._size = 0

    def close(self) -> None:
        self._file.close()


class LineJoiner:
    """Turns CRI records back into log lines, joining partial chunks; with
    ``stream``, only that stream's (an Alloc's log has one stream per task)."""

    def __init__(self, timestamps: bool, stream: str | None = None, raw: bool = False) -> None:
        self.timestamps = timestamps
        self.stream = stream
        self.raw = raw  # the output as written: a partial record at once, a full one + "\n"
        self._pending: dict[str, tuple[str, str]] = {}  # stream -> (first stamp, text)
        self.stamp = ""  # when the line feed() last completed was written

    def feed(self, record: str) -> str | None:
        parts = record.split(" ", 3)
        if len(parts) < 4:
            self.stamp = ""
            return record if parts != [""] else None  # not CRI: pass through
        stamp, stream, tag, content = parts
        if self.stream is not None and stream != self.stream:
            return None
        if self.raw:
            self.stamp = stamp
            return content if tag == "P" else content + "\n"
        first_stamp, text = self._pending.pop(stream, (stamp, ""))
        text += content
        if tag == "P":
            self._pending[stream] = (first_stamp, text)
            return None
        self.stamp = first_stamp
        return f"{first_stamp} {text}" if self.timestamps else text


class LogFiles:
    """Reading one container's logs: which instances exist, tail, follow."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)

    def attempts(self) -> list[int]:
        try:
            names = os.listdir(self.log_dir)
        except FileNotFoundError:
            return []
        found = {int(m.group(1)) for m in map(_FILE.match, names) if m}
        return sorted(found)

    def instance(self, previous: bool = False) -> int | None:
        """The current instance's attempt, or the last terminated one's if previous."""
        attempts = self.attempts()
        wanted = 2 if previous else 1
        return attempts[-wanted] if len(attempts) >= wanted else None

    def files(self, attempt: int) -> list[Path]:
        """The instance's files, oldest first."""
        base = log_path(self.log_dir, attempt)
        rotated = sorted(self.log_dir.glob(f"{attempt}.log.*"),
                         key=lambda p: -int(p.name.rsplit(".", 1)[1]))
        return rotated + ([base] if base.exists() else [])

    def read(self, attempt: int, tail: int | None = None, timestamps: bool = False,
             stream: str | None = None, since: str = "") -> list[str]:
        """The instance's lines: the last ``tail`` of them, and of those the ones
        written at or after ``since`` (an RFC 3339 time), in the kubelet's order."""
        joiner = LineJoiner(timestamps, stream)
        lines: deque[tuple[str, str]] = deque(
            maxlen=tail if tail is not None and tail >= 0 else None)
        for path in self.files(attempt):
            for record in _records(path):
                line = joiner.feed(record)
                if line is not None:
                    lines.append((joiner.stamp, line))
        return [line for stamp, line in lines if _at_or_after(stamp, since)]

    async def follow(
        self, attempt: int, tail: int | None = None, timestamps: bool = False,
        finished: Callable[[], bool] | None = None, poll_seconds: float = 0.1,
        stream: str | None = None, raw: bool = False, since: str = "",
    ) -> AsyncGenerator[str, None]:
        """Yield the tail (of it, the lines since ``since``), then new lines as they
        are written, across rotations; ends once ``finished()`` is true and
        everything written has been read. ``raw``: output as written instead of
        lines (LineJoiner), for attach."""
        # Open the live file before reading anything, so no line falls in between.
        tailer = _Tailer(log_path(self.log_dir, attempt), timestamps, stream, raw)
        try:
            rotated = [p for p in self.files(attempt) if p.suffix != ".log"]
            backlog = [(tailer.joiner.stamp, line) for path in rotated
                       for record in _records(path)
                       if (line := tailer.joiner.feed(record)) is not None]
            backlog += tailer.poll()
            for stamp, line in backlog[-tail:] if tail is not None and tail >= 0 else backlog:
                if _at_or_after(stamp, since):
                    yield line
            while True:
                done = finished is not None and finished()  # checked before reading
                lines = tailer.poll()
                for stamp, line in lines:
                    if _at_or_after(stamp, since):
                        yield line
                if done and not lines:
                    return
                if not lines:
                    # Imported here: the shim launcher imports this module and
                    # forks every shim from itself, and asyncio (with ssl) is a
                    # third of what it would have to copy per fork.
                    import asyncio
                    await asyncio.sleep(poll_seconds)
        finally:
            tailer.close()

    def prune(self, keep_from_attempt: int) -> None:
        """Delete the files of instances older than ``keep_from_attempt``."""
        for name in os.listdir(self.log_dir) if self.log_dir.exists() else []:
            match = _FILE.match(name)
            if match and int(match.group(1)) < keep_from_attempt:
                (self.log_dir / name).unlink(missing_ok=True)


def _at_or_after(stamp: str, since: str) -> bool:
    # CRI stamps are fixed-width RFC 3339 in UTC (nanoseconds, "Z"), so they
    # order as strings; a line without one (not CRI) is always shown.
    return not since or not stamp or stamp >= since


def _records(path: Path) -> list[str]:
    with open(path, "rb") as f:
        return [raw.decode("utf-8", "replace").rstrip("\n") for raw in f]


class _Tailer:
    """Reads a live file from its start and then what is appended, following it
    when the writer rotates it away (the rest of the old file is read first)."""

    def __init__(self, path: Path, timestamps: bool, stream: str | None = None,
                 raw: bool = False) -> None:
        self.path = path
        self.joiner = LineJoiner(timestamps, stream, raw)
        self._file: BinaryIO | None = None
        self._inode = 0
        self._buffer = b""
        if path.exists():
            self._open()

    def _open(self) -> None:
        self._file = open(self.path, "rb")  # noqa: SIM115 - lives with the tailer
        self._inode = os.fstat(self._file.fileno()).st_ino

    def poll(self) -> list[tuple[str, str]]:
        """The lines completed since the last poll, each with its stamp."""
        records = self._drain()
        if self._rotated():
            records += self._drain()  # whatever the old file got last
            records += self._rotated_since()  # files that came and went meanwhile
            if self._file is not None:
                self._file.close()
            self._open()
            records += self._drain()
        lines = []
        for record in records:
            line = self.joiner.feed(record)
            if line is not None:
                lines.append((self.joiner.stamp, line))
        return lines

    def _rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._inode or self._file is None
        except FileNotFoundError:
            return False

    def _rotated_since(self) -> list[str]:
        """Records of rotated files newer than the one we had open (when the
        writer rotated more than once between two polls)."""
        if self._file is None:
            return []
        rotated = sorted(self.path.parent.glob(f"{self.path.name}.*"),
                         key=lambda p: -int(p.name.rsplit(".", 1)[1]))  # oldest first
        inodes = []
        for p in rotated:
            try:
                inodes.append(p.stat().st_ino)
            except FileNotFoundError:
                inodes.append(-1)
        if self._inode not in inodes:
            return []
        newer = rotated[inodes.index(self._inode) + 1:]
        return [record for p in newer if p.exists() for record in _records(p)]

    def _drain(self) -> list[str]:
        if self._file is None:
            return []
        self._buffer += self._file.read()
        *complete, self._buffer = self._buffer.split(b"\n")
        return [c.decode("utf-8", "replace") for c in complete]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
