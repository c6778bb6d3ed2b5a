"""What a framework's standing Alloc holds, kept as direct launches come: its
task ids and what the live ones take — the pool's check of every ACCEPT sent to
the agent directly (pool.py ``_direct_fit``).

    the Alloc as written or seen (spec.tasks) ─┐  rebuilt when it changes
    tasks launched directly, not written yet ──┴► ids: every task it names
                         (added as they come)      live: task id → its resources,
                                                   parsed once, while not ended
    need() = the sum over ``live``, dropping the tasks the book has seen end

In a burst the spec names every task of the last write interval and more (ended
ones stay until acknowledged), so adding them all up at each ACCEPT cost the
master more the faster tasks came; what is live is a handful (the node's slots).
A task the book does not know is live, as the pool's ``_need`` counts it; a
task's end is final (the book never moves a terminal task again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from corral.objects import Obj, meta, spec
from corral.offers.launch import TASK_RESOURCES_ANNOTATION, Plan, alloc_task_resources
from corral.offers.resources import Resources
from corral.offers.tasks import Task

Parsed = dict[str, tuple[list[Obj], Resources | None]]  # task id → (its list, parsed)


class _Launch(Protocol):
    plan: Plan


def parse_cached(parsed: Parsed, task_id: str, items: list[Obj]) -> Resources | None:
    """A task's Mesos resources, parsed once while its list is the same (None: a
    list that does not read takes nothing)."""
    entry = parsed.get(task_id)
    if entry is None or not (entry[0] is items or entry[0] == items):
        entry = (items, None)
        with contextlib.suppress(Exception):
            entry = (items, Resources.from_mesos(items))
        parsed[task_id] = entry
    return entry[1]


class LiveNeed:
    def __init__(self) -> None:
        self.obj: Obj | None = None  # the Alloc these were built from
        self.items: list[_Launch] = []  # the direct launches added since, in order
        self.ids: set[str] = set()
        self.live: dict[str, Resources | None] = {}

    def sync(self, obj: Obj, unwritten: Sequence[_Launch], parsed: Parsed,
             tasks: Mapping[tuple[str, str], Task], fw_id: str) -> None:
        """Up to date with the Alloc ``obj`` and the launches not written yet."""
        done = self.items
        if self.obj is not obj and _same_tasks(self.obj, obj):
            self.obj = obj  # (its status, written by the agent, or the echo of a write)
        if self.obj is not obj or len(done) > len(unwritten) or any(
                a is not b for a, b in zip(done, unwritten)):
            self.obj, self.items, self.ids, self.live = obj, [], set(), {}
            wire = alloc_task_resources(obj)
            self._add(((str(t["id"]), wire.get(str(t["id"])) or [])
                       for t in spec(obj).get("tasks") or ()), parsed, tasks, fw_id)
            done = self.items
        for item in unwritten[len(done):]:
            resources = item.plan.resources
            self._add(((str(t["id"]), resources.get(str(t["id"])) or [])
                       for t in item.plan.tasks), parsed, tasks, fw_id)
            done.append(item)

    def _add(self, entries: Iterable[tuple[str, list[Obj]]], parsed: Parsed,
             tasks: Mapping[tuple[str, str], Task], fw_id: str) -> None:
        for task_id, items in entries:
            self.ids.add(task_id)
            known = tasks.get((fw_id, task_id))
            if known is not None and known.terminal:
                self.live.pop(task_id, None)
            else:
                self.live[task_id] = parse_cached(parsed, task_id, items)

    def need(self, tasks: Mapping[tuple[str, str], Task], fw_id: str,
             more: Iterable[Resources | None] = ()) -> Resources:
        """What the live tasks take (those the book has seen end are dropped), and
        ``more`` with them."""
        cpus = mem = disk = 0.0
        ports: list[tuple[int, int]] = []
        ended = []
        for task_id, res in self.live.items():
            known = tasks.get((fw_id, task_id))
            if known is not None and known.terminal:
                ended.append(task_id)
            elif res is not None:
                cpus, mem, disk = cpus + res.cpus, mem + res.mem, disk + res.disk
                ports.extend(res.ports)
        for task_id in ended:
            del self.live[task_id]
        for res in more:
            if res is not None:
                cpus, mem, disk = cpus + res.cpus, mem + res.mem, disk + res.disk
                ports.extend(res.ports)
        return Resources(cpus, mem, disk, tuple(ports))


def _same_tasks(old: Obj | None, new: Obj) -> bool:
    """Whether two versions of an Alloc name the same tasks with the same resources:
    the same object (uid) at the same spec generation (the API counts it up at each
    change of the spec) with the same resources annotation."""
    if old is None:
        return False
    a, b = meta(old), meta(new)
    generation = b.get("generation")
    return isinstance(generation, int) and bool(b.get("uid")) and \
        a.get("uid") == b.get("uid") and a.get("generation") == generation and \
        (a.get("annotations") or {}).get(TASK_RESOURCES_ANNOTATION) == \
        (b.get("annotations") or {}).get(TASK_RESOURCES_ANNOTATION)
