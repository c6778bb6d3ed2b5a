"""The children of `corral up` and what happens when one dies.

Policy: nothing is restarted automatically. A dead agent is a dead machine: it
stays dead so its node goes NotReady and its pods are replaced elsewhere, which
is what someone pulling the plug on a node wants to see. A dead master or etcd
member stays dead too: with several masters the others carry on, and a quick
automatic restart would hide the failover being tried out. Each death is reported
once on the console with the command that starts the component again (a process
started by hand is the user's: Ctrl-C in `corral up` does not stop it).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# What `up` quotes of a child's log when the child dies before the cluster is up.
LOG_TAIL_LINES = 15
LOG_TAIL_BYTES = 8192

@dataclass
class Child:
    name: str  # "master", "master-2", "node-1", "etcd-1", "front"
    role: str  # what it is, for people: "agent", "master", "etcd member", ...
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    reported: bool = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def died(self) -> str:
        """Why this child is gone, for the console: its exit and its log's last lines."""
        assert self.proc is not None and self.proc.returncode is not None
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
                tail = log.read().decode(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            tail = []
        head = f"{self.name} exited ({_exit_text(self.proc.returncode)}); see {self.log_path}"
        return "\n".join([head, *(f"  | {line}" for line in tail)])

    @property
    def restart_command(self) -> str:
        return f"{shlex.join(self.argv)} >>{shlex.quote(str(self.log_path))} 2>&1 &"


def corral_argv(*args: str) -> list[str]:
    """The argv of a `corral` subcommand run with this interpreter."""
    return [sys.executable, "-m", "corral.cli.main", *args]


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Supervisor:
    """Starts children in their own process groups, reports deaths, stops all."""

    children: list[Child] = field(default_factory=list)
    say: Callable[[str], None] = lambda line: print(line, flush=True)

    def start(self, child: Child) -> Child:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(child.log_path, "ab") as out:
            # Own process group: a Ctrl-C in the terminal reaches `up`, which stops
            # the children in order, instead of all of them at once.
            child.proc = subprocess.Popen(child.argv, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.children.append(child)
        return child

    def alive(self) -> list[Child]:
        return [c for c in self.children if c.proc is not None and c.proc.poll() is None]

    def report_deaths(self, consequence: Callable[[Child], str]) -> list[Child]:
        """Each child that died since the last call, reported once."""
        dead = [c for c in self.children
                if c.proc is not None and c.proc.poll() is not None and not c.reported]
        for child in dead:
            child.reported = True
            assert child.proc is not None
            self.say(f"{child.name} ({child.role}, pid {child.proc.pid}) exited "
                     f"({_exit_text(child.proc.returncode)}). {consequence(child)}\n"
                     f"  corral up does not restart it; to start it again:\n"
                     f"  {child.restart_command}")
        return dead

    def stop_all(self, grace: float) -> None:
        """SIGTERM each child's process group (last started first), wait up to
        ``grace`` s, then SIGKILL what is left."""
        procs = [c.proc for c in reversed(self.children) if c.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            _signal_group(proc.pid, signal.SIGKILL)  # anything left in its group


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
