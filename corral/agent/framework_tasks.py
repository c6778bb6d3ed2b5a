"""A Mesos framework's tasks in one Alloc, on the node: which to launch, which to
kill, and the state of each (Mesos' TaskState) for ``status.tasks``. Pure state
(no I/O), driven by the Alloc worker as TaskArray is for task arrays.

    spec.tasks[i]            not seen yet ──launch──► TASK_STARTING ──the executor
                             started it──► TASK_RUNNING (``started``: when)
                             kill: true   ──TERM (its kill grace, then KILL)──►
                                          TASK_KILLING ──exit──► TASK_KILLED
                             gone from spec (ended, and the master has recorded it)
                                          ──► forgotten
    executor exit            code 0 ──► TASK_FINISHED     ≠0 ──► TASK_FAILED
                             could not start ──► TASK_FAILED (its message says why)
    Alloc deleted            what still runs is stopped ──► TASK_KILLED
    launched by the master directly (framework_link.py), before its spec write:
                             kept as ``direct`` until spec.tasks names it, and
                             reported in status.tasks all the same (a master that
                             died before writing it learns it from there)

A task is launched once: its state is recorded before the exit is acknowledged to
the executor, and a restarted agent adopts what the executor still runs (a task
the spec does not name too). Each state carries ``seq``, increasing per task
across agent restarts (microseconds of the wall clock at least), so the master
keeps the newest of what it hears streamed and what it reads from the store.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.objects import Obj, now_rfc3339, spec, status

TERMINAL = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
                      "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"})
SANDBOX_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def sandbox_name(task_id: str) -> str:
    """A task id as one path component (Mesos ids may hold almost anything)."""
    name = SANDBOX_UNSAFE.sub("_", task_id)
    return "_" + name if name in ("", ".", "..") else name


@dataclass
class Launch:
    id: str
    command: list[str]
    env: dict[str, str]
    sandbox: str  # the directory name under the Alloc's sandboxes
    user: str = ""  # "" : the node's pod user


@dataclass
class FrameworkTasks:
    states: dict[str, Obj] = field(default_factory=dict)  # task id → status.tasks entry
    launched: set[str] = field(default_factory=set)  # handed to the executor
    kill_sent: dict[str, float] = field(default_factory=dict)  # task id → KILL deadline
    specs: dict[str, Obj] = field(default_factory=dict)  # task id → spec.tasks entry
    # Launched by the master directly and not yet named by spec.tasks (in specs too).
    direct: dict[str, Obj] = field(default_factory=dict)
    killed: dict[str, float | None] = field(default_factory=dict)  # direct kills: grace
    # What a sync must look at, so that it costs what changed rather than the whole
    # spec (a framework's Alloc names every task until the master drops it):
    # tasks not handed to the executor yet (in spec order), tasks asked to be killed.
    unlaunched: dict[str, None] = field(default_factory=dict)
    kills: set[str] = field(default_factory=set)
    on_change: Callable[[Obj], None] | None = None  # each new state (the agent's feed)

    @classmethod
    def from_alloc(cls, alloc: Obj) -> FrameworkTasks:
        """Resume from what the Alloc records (an agent restart keeps its states)."""
        tasks = cls()
        named = {str(t["id"]) for t in spec(alloc).get("tasks") or ()}
        for entry in status(alloc).get("tasks") or ():
            task_id = str(entry["id"])
            tasks.states[task_id] = dict(entry)
            if task_id not in named and entry.get("state") not in TERMINAL:
                tasks.direct[task_id] = {"id": task_id}  # launched directly, still unwritten
        tasks.update(alloc)
        return tasks

    def update(self, alloc: Obj) -> None:
        written = {str(t["id"]): t for t in spec(alloc).get("tasks") or ()}
        for task_id in [t for t in self.direct if t in written]:
            del self.direct[task_id]
        self.specs = {**written, **self.direct}
        self._overlay_kills()
        self.unlaunched = {t: None for t in self.specs
                           if t not in self.launched and self.state(t) not in TERMINAL}
        self.kills = {t for t, entry in self.specs.items() if entry.get("kill")}
        for task_id in [t for t in self.states if t not in self.specs]:
            if self.state(task_id) in TERMINAL:  # the master dropped it: it ended
                del self.states[task_id]
                self.kill_sent.pop(task_id, None)
                self.killed.pop(task_id, None)

    def launch_direct(self, tasks: list[Obj], kills: dict[str, float | None]) -> list[str]:
        """The master's own launches and kills, ahead of the spec that will name
        them; returns the ids taken (a task known already is not launched twice)."""
        taken = []
        for task in tasks:
            task_id = str(task["id"])
            if task_id not in self.specs and task_id not in self.states:
                self.direct[task_id] = self.specs[task_id] = dict(task)
                self.unlaunched[task_id] = None
                if task.get("kill"):
                    self.kills.add(task_id)
                taken.append(task_id)
        self.killed.update({t: g for t, g in kills.items() if t in self.specs})
        self._overlay_kills()
        return taken

    def _overlay_kills(self) -> None:
        """Kills the master sent directly hold until the spec says them too."""
        for task_id, grace in self.killed.items():
            entry = self.specs.get(task_id)
            if entry is not None and not entry.get("kill"):
                entry = {**entry, "kill": True}
                if grace is not None:
                    entry["killGraceSeconds"] = grace
                self.specs[task_id] = entry
                self.kills.add(task_id)

    def adopt(self, running: list[str], queued: tuple[str, ...] = ()) -> None:
        """Tasks the executor still runs or queues (after an agent restart); one
        the spec does not name was launched directly and is kept as such."""
        for task_id in running:
            if task_id not in self.specs:
                self.direct[task_id] = self.specs[task_id] = {"id": task_id}
            if task_id in self.specs:
                self.launched.add(task_id)
                if self.state(task_id) in ("", "TASK_STAGING"):
                    self._set(task_id, "TASK_STARTING")
                if task_id not in queued:
                    self.started(task_id)

    def state(self, task_id: str) -> str:
        return str(self.states.get(task_id, {}).get("state") or "")

    def to_launch(self) -> list[Launch]:
        """Tasks to hand to the executor now (each once); a task killed before it
        ran is KILLED without running."""
        out = []
        pending, self.unlaunched = self.unlaunched, {}
        for task_id in pending:
            task = self.specs.get(task_id)
            if task is None or task_id in self.launched or self.state(task_id) in TERMINAL:
                continue
            if task.get("kill"):
                self._set(task_id, "TASK_KILLED", reason="REASON_TASK_KILLED_DURING_LAUNCH",
                          message="Killed before it was launched")
                continue
            if not task.get("command"):  # known from the status only: no longer runs
                self._set(task_id, "TASK_FAILED", reason="REASON_EXECUTOR_TERMINATED",
                          message="The executor no longer runs the task")
                continue
            env = {str(e["name"]): str(e.get("value") or "") for e in task.get("env") or ()}
            out.append(Launch(task_id, [str(c) for c in task.get("command") or ()], env,
                              sandbox_name(task_id), str(task.get("user") or "")))
            self.launched.add(task_id)
            self._set(task_id, "TASK_STARTING")
        return out

    def started(self, task_id: str) -> None:
        """The executor started the task's process."""
        if self.state(task_id) == "TASK_STARTING":
            self._set(task_id, "TASK_RUNNING")

    def to_kill(self, now: float) -> list[tuple[str, int]]:
        """(task id, signal) to send: TERM first, KILL once its grace has passed."""
        out: list[tuple[str, int]] = []
        for task_id in list(self.kills):
            task = self.specs.get(task_id)
            if task is None or self.state(task_id) in TERMINAL:
                self.kills.discard(task_id)  # gone, or ended: nothing more to send
                continue
            if task_id not in self.launched:
                continue  # not started yet: to_launch ends it without running
            deadline = self.kill_sent.get(task_id)
            if deadline is None:
                grace = float(task.get("killGraceSeconds") or 3.0)
                self.kill_sent[task_id] = now + grace
                self._set(task_id, "TASK_KILLING")
                out.append((task_id, 15))
            elif now >= deadline:
                self.kill_sent[task_id] = float("inf")
                out.append((task_id, 9))
        return out

    def next_kill(self) -> float | None:
        pending = [d for t, d in self.kill_sent.items()
                   if d != float("inf") and self.state(t) not in TERMINAL]
        return min(pending, default=None)

    def exited(self, task_id: str, code: int, signal: int | None, reason: str, message: str,
               stopping: bool) -> None:
        if task_id not in self.specs or self.state(task_id) in TERMINAL:
            return
        self.launched.discard(task_id)
        if (self.specs[task_id].get("kill") or stopping) and code != 0:
            self._set(task_id, "TASK_KILLED", code, "REASON_TASK_KILLED" if not stopping
                      else "REASON_EXECUTOR_TERMINATED",
                      f"Killed by signal {signal}" if signal else f"Exited with status {code}")
        elif code == 0:
            self._set(task_id, "TASK_FINISHED", 0, message="Command exited with status 0")
        elif reason == "StartError":
            self._set(task_id, "TASK_FAILED", code, "REASON_COMMAND_EXECUTOR_FAILED", message)
        else:
            self._set(task_id, "TASK_FAILED", code, "REASON_COMMAND_EXECUTOR_FAILED",
                      f"Command terminated with signal {signal}" if signal
                      else f"Command exited with status {code}")

    def end_all(self, state: str, message: str) -> None:
        """The executor is gone (stopped with the Alloc, or lost): what did not
        report ran no further."""
        for task_id in self.specs:
            if self.state(task_id) not in TERMINAL:
                self._set(task_id, state, reason="REASON_EXECUTOR_TERMINATED",
                          message=message)

    def all_terminal(self) -> bool:
        return all(self.state(t) in TERMINAL for t in self.specs)

    def running(self) -> int:
        return sum(1 for t in self.specs
                   if self.state(t) in ("TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"))

    def status_fields(self) -> Obj:
        return {"tasks": [self.states[t] for t in self.specs if t in self.states],
                "running": self.running()}

    def _set(self, task_id: str, state: str, exit_code: int | None = None,
             reason: str | None = None, message: str | None = None) -> None:
        previous = self.states.get(task_id, {})
        seq = max(int(previous.get("seq") or 0) + 1, time.time_ns() // 1000)
        entry: Obj = {"id": task_id, "state": state, "time": now_rfc3339(), "seq": seq}
        started = previous.get("started")
        if state == "TASK_RUNNING" and not started:
            started = entry["time"]
        if started:
            entry["started"] = started  # the master reports RUNNING before how it ended
        if exit_code is not None:
            entry["exitCode"] = exit_code
        if reason:
            entry["reason"] = reason
        if message:
            entry["message"] = message
        self.states[task_id] = entry
        if self.on_change is not None:
            self.on_change(entry)
