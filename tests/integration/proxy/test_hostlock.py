"""HostLock between real processes: a member killed with -9 stops counting at once
(the kernel drops its locks), its node IP leaves the NodePort addresses, and the
table is removed by whoever finds no member left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from corral.proxy.hostlock import HostLock

MEMBER = """
import sys, time
from pathlib import Path
from corral.proxy.hostlock import HostLock
lock = HostLock("corral-t", Path(sys.argv[1]))
lock.join(sys.argv[2])
print("writer" if lock.try_write() else "member", flush=True)
time.sleep(600)
"""


def member(run_dir: Path, node_ip: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", MEMBER, str(run_dir), node_ip],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_killed_members_stop_counting_and_the_last_one_out_removes_the_table(
        tmp_path: Path) -> None:
    removed: list[str] = []
    a, role_a = member(tmp_path, "10.0.0.1")
    b, role_b = member(tmp_path, "10.0.0.2")
    try:
        assert (role_a, role_b) == ("writer", "member")
        here = HostLock("corral-t", tmp_path)
        here.join("10.0.0.3")
        assert here.node_ips() == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        assert not here.try_write()  # a is the writer
        kill(a)
        assert here.try_write()  # its lock went with it
        assert here.node_ips() == ["10.0.0.2", "10.0.0.3"]
        assert not here.leave(lambda: removed.append("by leave"))  # b still runs
        kill(b)
        assert HostLock("corral-t", tmp_path).reap(lambda: removed.append("by reap"))
        assert removed == ["by reap"]
        assert list(tmp_path.iterdir()) == []  # nothing of the lock files is left
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                kill(proc)
