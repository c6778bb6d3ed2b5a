"""Agents sharing one host network namespace share one nftables table: who writes
it, and who removes it.

    <run dir>/                          flock'ed for a moment: join and leave, one at a time
    <run dir>/<netns>-<table>.members   LOCK_SH by every member for as long as it runs
    <run dir>/<netns>-<table>.writer    LOCK_EX by the one member that writes the table
    <run dir>/<netns>-<table>.node.<id> LOCK_EX by one member: its node IP (the writer
                                        serves NodePorts on the IPs of live members)

`<netns>` is the inode of the calling thread's network namespace, so agents in
different namespaces (separate "hosts") never meet. The kernel drops the locks
of a process that dies, kill -9 included: a dead writer's place is free for the
next member that asks, and a dead agent is no longer a member. The last member to
leave (the members lock can be taken exclusively) deletes the table and the
files; leaving is serialised, so of two agents stopping together exactly one is
last. A killed member's node file is unlocked: it no longer counts, and is
removed by the next reader.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_RUN_DIR = Path("/run/corral/proxy")


def netns_id() -> int:
    """The calling thread's network namespace (threads may have their own)."""
    return os.stat("/proc/thread-self/ns/net").st_ino


class HostLock:
    def __init__(self, table: str, run_dir: Path = DEFAULT_RUN_DIR) -> None:
        self.run_dir = run_dir
        stem = f"{netns_id()}-{table}"
        self.members_path = run_dir / f"{stem}.members"
        self.writer_path = run_dir / f"{stem}.writer"
        self._node_prefix = f"{stem}.node."
        self.node_path = run_dir / f"{self._node_prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._member: int | None = None
        self._writer: int | None = None
        self._node: int | None = None

    @property
    def joined(self) -> bool:
        return self._member is not None

    @property
    def writing(self) -> bool:
        return self._writer is not None

    def join(self, node_ip: str | None = None) -> None:
        """Become a member (idempotent), serving NodePorts on ``node_ip``."""
        if self._member is not None:
            return
        with self._serialised():
            fd = os.open(self.members_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)  # only a leaver holds it exclusively, briefly
            self._member = fd
            if node_ip:
                self._node = os.open(self.node_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._node, fcntl.LOCK_EX)
                os.write(self._node, node_ip.encode())

    def node_ips(self) -> list[str]:
        """The node IPs of the live members; dead members' files are removed."""
        with self._serialised():
            found: set[str] = set()
            for path in self.run_dir.glob(f"{self._node_prefix}*"):
                if self._held(path):  # flock conflicts across fds, ours included
                    found.add(path.read_text())
                else:
                    path.unlink(missing_ok=True)
            return sorted(found - {""})

    def try_write(self) -> bool:
        """Whether this member is (now) the writer; never waits."""
        if self._writer is not None:
            return True
        assert self._member is not None, "join first"
        fd = os.open(self.writer_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._writer = fd
        return True

    def stop_writing(self) -> None:
        if self._writer is not None:
            os.close(self._writer)  # closing drops the lock
            self._writer = None

    def leave(self, remove_table: Callable[[], None]) -> bool:
        """Stop being a member; the last one out calls ``remove_table``. True if last."""
        self.stop_writing()
        if self._member is None:
            return False
        with self._serialised():
            if self._node is not None:
                self.node_path.unlink(missing_ok=True)
                os.close(self._node)
                self._node = None
            os.close(self._member)
            self._member = None
            return self._remove_if_unused(remove_table)

    def reap(self, remove_table: Callable[[], None]) -> bool:
        """Remove the table if no member is alive (agents that were killed)."""
        if not self.members_path.exists():
            return False
        with self._serialised():
            return self._remove_if_unused(remove_table)

    def _remove_if_unused(self, remove_table: Callable[[], None]) -> bool:
        try:
            fd = os.open(self.members_path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # someone still runs
        else:
            remove_table()
            # Safe under the directory lock: joining takes it too, and with no
            # member left nobody polls the writer file.
            self.members_path.unlink(missing_ok=True)
            self.writer_path.unlink(missing_ok=True)
            for path in self.run_dir.glob(f"{self._node_prefix}*"):
                path.unlink(missing_ok=True)  # only killed members' are left
            return True
        finally:
            os.close(fd)

    @staticmethod
    def _held(path: Path) -> bool:
        """Whether a live process holds the file's lock (our own fds included)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            return False
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _serialised(self) -> Iterator[None]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.run_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
