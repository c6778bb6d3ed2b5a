"""What `corral up` says when a child dies before the cluster is up: its exit and
the end of its log, so the cause is on the console (and in CI's output)."""

from __future__ import annotations

from pathlib import Path

from corral.cli.supervisor import LOG_TAIL_LINES, Child, Supervisor


def test_a_dead_child_is_explained_by_the_end_of_its_log(tmp_path: Path) -> None:
    script = "for i in $(seq 1 40); do echo line $i; done; echo 'OSError: in use' >&2; exit 3"
    child = Supervisor(say=lambda _line: None).start(
        Child("master-2", "master", ["sh", "-c", script], tmp_path / "logs" / "m.log"))
    assert child.proc is not None and child.proc.wait(30) == 3
    lines = child.died().splitlines()
    assert lines[0] == f"master-2 exited (exit code 3); see {tmp_path / 'logs' / 'm.log'}"
    assert lines[1:] == [f"  | line {i}" for i in range(42 - LOG_TAIL_LINES, 41)] + [
        "  | OSError: in use"]


def test_a_child_without_a_log_still_says_how_it_died(tmp_path: Path) -> None:
    child = Supervisor(say=lambda _line: None).start(
        Child("etcd-1", "etcd member", ["sh", "-c", "kill -9 $$"], tmp_path / "e.log"))
    assert child.proc is not None and child.proc.wait(30) == -9
    (tmp_path / "e.log").unlink()
    assert child.died() == f"etcd-1 exited (killed by SIGKILL); see {tmp_path / 'e.log'}"
