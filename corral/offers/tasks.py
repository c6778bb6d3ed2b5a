"""Frameworks' tasks as the leading master knows them, and the status updates it
owes each framework. Pure state (no I/O, clock-injected); the task loop
(taskloop.py) feeds it Allocs and sends what it returns.

    Alloc (spec.tasks, status.tasks by the agent) ──observe()──► Task records
        a task whose state changed ──► an update with a new uuid, queued per task
    node lost / Alloc gone under running tasks ──► TASK_LOST (PARTITION_AWARE:
        TASK_UNREACHABLE, then TASK_GONE) from the master
    queue head sent ──► re-sent every ``retry`` seconds (doubling, capped) until
        ACKNOWLEDGE names its uuid ──► the next one of that task is sent

Updates of one task go out in order, one unacknowledged at a time, as a Mesos
agent's status update manager sends them. A master that takes over re-sends each
task's latest state (it cannot know what its predecessor had acknowledged):
at least once, as Mesos promises.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from corral.client.clock import Clock
from corral.objects import Obj, labels_of, meta, name_of, namespace_of, parse_time, spec, status
from corral.offers.protocol import TERMINAL_STATES, b64, new_uuid

FRAMEWORK_LABEL = "corral.dev/framework"
ROLE_LABEL = "corral.dev/role"  # the role as a label value (for selection)
ROLE_ANNOTATION = "corral.dev/mesos-role"  # the role itself
RETRY_SECONDS = 10.0  # Mesos' first status update retry interval
RETRY_CAP_SECONDS = 60.0
PRUNED_KEPT_SECONDS = 600.0
COMPLETED_KEPT = 1000  # terminal, acknowledged tasks kept for /master/state, per framework


@dataclass
class Task:
    id: str
    framework_id: str
    node: str
    alloc: str  # "namespace/name" of its Alloc
    name: str
    resources: list[Obj]  # its Mesos Resource list, as launched
    state: str = "TASK_STAGING"
    statuses: list[Obj] = field(default_factory=list)  # [{state, timestamp}] as Mesos keeps
    gone: bool = False  # its Alloc no longer exists
    seq: int = 0  # the agent's sequence of the latest state taken (streamed or stored)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(slots=True)
class Pending:
    status: Obj  # a TaskStatus with its uuid
    uuid: str
    due: float = 0.0  # monotonic time of the next send
    interval: float = RETRY_SECONDS

    def sent(self, now: float) -> Obj:
        """Sent now: the next send after the interval, which doubles (capped)."""
        self.due = now + self.interval
        self.interval = min(self.interval * 2, RETRY_CAP_SECONDS)
        return self.status


class TaskBook:
    def __init__(self, clock: Clock, *, retry_seconds: float = RETRY_SECONDS) -> None:
        self.clock = clock
        self.retry = retry_seconds
        self.tasks: dict[tuple[str, str], Task] = {}  # (framework, task id) → task
        self.pending: dict[tuple[str, str], deque[Pending]] = {}
        # framework → ids of tasks whose queue head became due at once (a new update,
        # or the next after an ACKNOWLEDGE): what an event sends without walking every
        # pending update of every framework (``fresh``); retries are the tick's (``due``)
        self._fresh: dict[str, dict[str, None]] = {}
        # framework → its terminal, settled tasks by id, oldest first (COMPLETED_KEPT)
        self.completed: dict[str, dict[str, Task]] = {}
        # Alloc "ns/name" → ids pruned from its spec (→ when), which its agent may
        # still report for a while (its status is written seconds apart, and a store
        # read may come late): not a task launched directly and unwritten, however
        # many tasks ``completed`` has let go since. Kept PRUNED_KEPT_SECONDS.
        self._pruned: dict[str, dict[str, float]] = {}
        self.partition_aware: set[str] = set()  # frameworks that asked for it
        self.killing_aware: set[str] = set()  # TASK_KILLING_STATE: told of TASK_KILLING

    # -- what the Allocs say -------------------------------------------------------

    def observe(self, alloc: Obj, resources: dict[str, list[Obj]]) -> list[Task]:
        """Take an Alloc's tasks and states; returns tasks whose state changed (each
        has a new update queued). ``resources``: task id → its Mesos resources."""
        framework_id = labels_of(alloc).get(FRAMEWORK_LABEL, "")
        node = str(spec(alloc).get("nodeName") or "")
        key = f"{namespace_of(alloc)}/{name_of(alloc)}"
        states = {str(t.get("id")): t for t in status(alloc).get("tasks") or ()}
        changed = []
        named = set()
        for entry in spec(alloc).get("tasks") or ():
            task_id = str(entry["id"])
            named.add(task_id)
            task = self._task(framework_id, task_id, node, key, str(entry.get("name") or ""),
                              resources.get(task_id, []))
            if self._take(task, states.get(task_id)):
                changed.append(task)
        # Tasks the agent runs that the spec does not name: launched directly and
        # not written yet (or never: their master died first; a new one learns them
        # here, as a Mesos master learns an agent's tasks when it re-registers).
        pruned = self._pruned.get(key, {})
        for task_id, seen in states.items():
            if task_id in named or task_id in pruned or self._completed(framework_id, task_id):
                continue
            task = self._task(framework_id, task_id, node, key, "", [])
            if self._take(task, seen):
                changed.append(task)
        return changed

    def streamed(self, framework_id: str, alloc: str, node: str, seen: Obj) -> Task | None:
        """One state from the agent's feed; the task if it changed."""
        task_id = str(seen.get("id") or "")
        if not task_id or self._completed(framework_id, task_id) or \
                task_id in self._pruned.get(alloc, ()):
            return None
        task = self._task(framework_id, task_id, node, alloc, "", [])
        return task if self._take(task, seen) else None

    def launched(self, framework_id: str, alloc: str, node: str, tasks: list[Obj],
                 resources: dict[str, list[Obj]]) -> None:
        """Tasks handed to their agent directly: STAGING until it says more."""
        for entry in tasks:
            task = self._task(framework_id, str(entry["id"]), node, alloc,
                              str(entry.get("name") or ""), resources.get(entry["id"], []))
            task.resources = task.resources or resources.get(entry["id"], [])

    def _task(self, framework_id: str, task_id: str, node: str, alloc: str, name: str,
              resources: list[Obj]) -> Task:
        task = self.tasks.get((framework_id, task_id))
        if task is None:
            task = Task(task_id, framework_id, node, alloc, name, resources)
            self.tasks[(framework_id, task_id)] = task
            task.statuses.append({"state": task.state,
                                  "timestamp": self.clock.now().timestamp()})
        return task

    def _take(self, task: Task, seen: Obj | None) -> bool:
        """Move the task to what the agent says, unless that is older than what was
        taken already (``seq``: a store read behind the feed); True if it moved."""
        if seen is None or task.terminal:
            return False
        seq = int(seen.get("seq") or 0)
        if task.seq and seq <= task.seq:  # no seq at all: no newer than what has one
            return False
        task.seq = max(task.seq, seq)
        if seen.get("state") == task.state:
            return False
        for state, when in _steps(task.state, seen):
            if state == "TASK_KILLING" and task.framework_id not in self.killing_aware:
                task.state = state  # Mesos tells only frameworks that asked
                continue
            final = state == seen["state"]
            self._move(task, state, "SOURCE_EXECUTOR", seen.get("reason") if final
                       else None, seen.get("message") if final else None, when)
        return True

    def _completed(self, framework_id: str, task_id: str) -> bool:
        return (framework_id, task_id) not in self.tasks and \
            task_id in self.completed.get(framework_id, {})

    def alloc_gone(self, alloc: Obj, node_ready: bool) -> list[Task]:
        """The Alloc was deleted: its tasks that had not ended are lost (GONE for a
        partition-aware framework)."""
        key = f"{namespace_of(alloc)}/{name_of(alloc)}"
        self._pruned.pop(key, None)
        changed = []
        for task in [t for t in self.tasks.values() if t.alloc == key]:
            task.gone = True
            if not task.terminal:
                aware = task.framework_id in self.partition_aware
                self._move(task, "TASK_GONE" if aware else "TASK_LOST", "SOURCE_MASTER",
                           "REASON_EXECUTOR_TERMINATED" if node_ready else "REASON_AGENT_REMOVED",
                           "The task's Alloc was deleted" if node_ready
                           else "The task's node was lost")
                changed.append(task)
            self._settle(task)
        return changed

    def node_lost(self, node: str) -> list[Task]:
        """The node stopped being Ready: its running tasks are unreachable (lost to
        a framework that is not partition-aware)."""
        changed = []
        for task in self.tasks.values():
            if task.node != node or task.terminal or task.state == "TASK_UNREACHABLE":
                continue
            aware = task.framework_id in self.partition_aware
            self._move(task, "TASK_UNREACHABLE" if aware else "TASK_LOST", "SOURCE_MASTER",
                       "REASON_AGENT_REMOVED" if not aware else "REASON_AGENT_DISCONNECTED",
                       f"Node {node} is not Ready")
            changed.append(task)
        return changed

    # -- acknowledgements and re-sending ---------------------------------------------

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> bool:
        """ACKNOWLEDGE: the head update of the task, if it has that uuid, is done
        (the next becomes due at once). False when nothing matched."""
        queue = self.pending.get((framework_id, task_id))
        if not queue or queue[0].uuid != uuid:
            return False
        queue.popleft()
        if queue:
            queue[0].due = 0.0
            self._fresh.setdefault(framework_id, {})[task_id] = None
        else:
            del self.pending[(framework_id, task_id)]
            task = self.tasks.get((framework_id, task_id))
            if task is not None:
                self._settle(task)
        return True

    def due(self, framework_id: str, *, now: float | None = None,
            everything: bool = False) -> list[Obj]:
        """The statuses to send the framework now (the head of each task's queue
        whose time has come; all heads with ``everything``, as on SUBSCRIBE)."""
        now = self.clock.monotonic() if now is None else now
        out = []
        for (fw, _), queue in self.pending.items():
            head = queue[0]
            if fw != framework_id or not (everything or head.due <= now):
                continue
            out.append(head.sent(now))
        return out

    def fresh(self, framework_id: str) -> list[Obj]:
        """The statuses that became due at once since the last call (see ``_fresh``),
        taken as sent; ``due`` finds the same and the retries, walking everything."""
        ids = self._fresh.pop(framework_id, None)
        if not ids:
            return []
        now = self.clock.monotonic()
        out = []
        for task_id in ids:
            queue = self.pending.get((framework_id, task_id))
            if not queue or queue[0].due > now:
                continue  # acknowledged since, or sent already
            out.append(queue[0].sent(now))
        return out

    def resend_all(self, framework_id: str) -> None:
        """A re-subscribed framework gets each pending update again from the start."""
        for (fw, _), queue in self.pending.items():
            if fw == framework_id:
                queue[0].due, queue[0].interval = 0.0, self.retry

    def requeue_latest(self, framework_id: str) -> None:
        """A new leader owes each task its latest state (see the module docstring)."""
        for task in self.tasks.values():
            if task.framework_id == framework_id and (task.framework_id, task.id) \
                    not in self.pending and not (task.terminal and task.gone):
                self._queue(task, self._status(task, "SOURCE_MASTER", None, None))

    # -- questions ------------------------------------------------------------------

    def of_framework(self, framework_id: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.framework_id == framework_id]

    def settled(self, alloc_key: str) -> bool:
        """Every task of the Alloc is terminal and its updates acknowledged: the
        Alloc may go."""
        tasks = [t for t in self.tasks.values() if t.alloc == alloc_key]
        return bool(tasks) and all(
            t.terminal and (t.framework_id, t.id) not in self.pending for t in tasks)

    def prune(self, framework_id: str, task_ids: list[str]) -> None:
        """Ended, acknowledged tasks left their Alloc's spec: only history now."""
        for task_id in task_ids:
            task = self.tasks.get((framework_id, task_id))
            if task is not None and task.terminal:
                task.gone = True
                self._settle(task)
                self._remember_pruned(task.alloc, task_id)

    def _remember_pruned(self, alloc: str, task_id: str) -> None:
        now = self.clock.monotonic()
        pruned = self._pruned.setdefault(alloc, {})
        pruned.pop(task_id, None)  # to the end: the oldest stay first
        pruned[task_id] = now
        while pruned:
            oldest, when = next(iter(pruned.items()))
            if now - when < PRUNED_KEPT_SECONDS:
                break
            del pruned[oldest]

    def forget_framework(self, framework_id: str) -> None:
        for key in [k for k in self.tasks if k[0] == framework_id]:
            del self.tasks[key]
        for key in [k for k in self.pending if k[0] == framework_id]:
            del self.pending[key]
        self._fresh.pop(framework_id, None)
        self.completed.pop(framework_id, None)

    def status_of(self, task: Task, *, reason: str | None = None) -> Obj:
        """The task's latest state as a TaskStatus without a uuid (reconciliation)."""
        return self._status(task, "SOURCE_MASTER", reason, None, uuid=False)

    # -- internals ------------------------------------------------------------------

    def _move(self, task: Task, state: str, source: str, reason: object, message: object,
              when: object = None) -> None:
        task.state = state
        stamp = when.timestamp() if hasattr(when, "timestamp") else \
            self.clock.now().timestamp()
        task.statuses.append({"state": state, "timestamp": stamp})
        self._queue(task, self._status(task, source, reason, message, stamp))

    def _queue(self, task: Task, st: Obj) -> None:
        key = (task.framework_id, task.id)
        queue = self.pending.get(key)
        if queue is None:
            queue = self.pending[key] = deque()
        queue.append(Pending(st, str(st["uuid"]), 0.0, self.retry))
        if len(queue) == 1:
            fresh = self._fresh.get(task.framework_id)
            if fresh is None:
                fresh = self._fresh[task.framework_id] = {}
            fresh[task.id] = None

    def _status(self, task: Task, source: str, reason: object, message: object,
                stamp: float | None = None, *, uuid: bool = True) -> Obj:
        st: Obj = {"task_id": {"value": task.id}, "state": task.state,
                   "agent_id": {"value": task.node}, "source": source,
                   "timestamp": stamp if stamp is not None else self.clock.now().timestamp()}
        if reason:
            st["reason"] = reason
        if message:
            st["message"] = message
        if uuid:
            st["uuid"] = b64(new_uuid())
        return st

    def _settle(self, task: Task) -> None:
        """A terminal task of a deleted Alloc, acknowledged: only history now."""
        key = (task.framework_id, task.id)
        if task.terminal and task.gone and key not in self.pending:
            del self.tasks[key]
            kept = self.completed.setdefault(task.framework_id, {})
            kept.pop(task.id, None)
            kept[task.id] = task
            if len(kept) > COMPLETED_KEPT:
                del kept[next(iter(kept))]


def _steps(state: str, seen: Obj) -> list[tuple[str, object]]:
    """The states from ``state`` to the agent's latest, as Mesos' command executor
    reports them: TASK_STARTING, then TASK_RUNNING once the process started
    (``started``), then how it ended — one status write of the agent may carry a
    task from handed over to ended."""
    target = str(seen["state"])
    when = parse_time(seen.get("time"))
    if state not in ("TASK_STAGING", "TASK_STARTING"):
        return [(target, when)]  # (a task running already: nothing in between)
    started = parse_time(seen.get("started")) if seen.get("started") else None
    steps: list[tuple[str, object]] = []
    if state == "TASK_STAGING" and target != "TASK_STARTING" and (
            started is not None or target in ("TASK_RUNNING", "TASK_KILLING")):
        steps.append(("TASK_STARTING", started or when))
    if state in ("TASK_STAGING", "TASK_STARTING") and target not in (
            "TASK_STARTING", "TASK_RUNNING") and started is not None:
        steps.append(("TASK_RUNNING", started))
    return [*steps, (target, when)]


def alloc_framework(alloc: Obj) -> str:
    return labels_of(alloc).get(FRAMEWORK_LABEL, "")


def alloc_role(alloc: Obj) -> str:
    return str((meta(alloc).get("annotations") or {}).get(ROLE_ANNOTATION) or "*")


def is_framework_alloc(alloc: Obj) -> bool:
    return bool(alloc_framework(alloc)) and bool(meta(alloc).get("name"))
