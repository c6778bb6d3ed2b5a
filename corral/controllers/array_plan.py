"""Task arrays: the pure rules (no I/O) the Job controller applies to a Job run
as tasks — how many Allocs of what size, who runs which indices, what the Job's
status says.

    progress   done = status.completedIndexes ∪ every live Alloc's completed
               failed = status.failedIndexes ∪ every live Alloc's failedIndexes
               failures = status.taskArray.removedFailures + Σ live Allocs' failures
    sizing     parallelism over the schedulable nodes, no Alloc bigger than the
               largest node can hold
    handing    unassigned indices (the pool) go, in contiguous ranges, to the
               Allocs with the least work; when the pool is empty an idle Alloc
               takes the upper half of the largest unclaimed range of another
               (work stealing). Indices an Alloc has claimed never move.

"Live" Allocs are those whose uid is not in uncountedTerminatedPods.failed: an
Alloc being removed is counted into the Job's status first (its uid listed),
then its finalizer goes, then its uid leaves the list (job.py's protocol).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from corral.api.quantity import bytes_value, cpu_millis
from corral.indexset import IndexFormatError, IndexSet
from corral.objects import Obj, is_deleting, name_of, spec, status, uid_of

MAX_ALLOCS = 256  # per Job: beyond this, bigger Allocs rather than more of them
STEAL_MIN = 2  # an idle Alloc steals only if the victim holds ≥ this × its slots unclaimed


def _indexes(text: str | None) -> IndexSet:
    try:
        return IndexSet.parse(text)
    except IndexFormatError:
        return IndexSet()


@dataclass
class AllocState:
    """What the controller reads off one Alloc."""

    name: str
    uid: str
    slots: int
    node: str
    deleting: bool
    phase: str
    assigned: IndexSet
    claimed: IndexSet
    completed: IndexSet
    failed: IndexSet
    failures: int
    running: int

    @classmethod
    def of(cls, alloc: Obj) -> AllocState:
        s, st = spec(alloc), status(alloc)
        return cls(name_of(alloc), uid_of(alloc), int(s.get("slots") or 1),
                   str(s.get("nodeName") or ""), is_deleting(alloc), str(st.get("phase") or ""),
                   _indexes(s.get("ranges")), _indexes(st.get("claimed")),
                   _indexes(st.get("completed")), _indexes(st.get("failedIndexes")),
                   int(st.get("failures") or 0), int(st.get("running") or 0))

    @property
    def lost(self) -> bool:
        """Its executor is gone (its agent wrote phase Failed: ExecutorLost) while
        the Alloc stays: it runs nothing more, so it takes no work, gives up all
        it has not started, and must go for the rest to run elsewhere."""
        return self.phase == "Failed" and not self.deleting

    def finished(self) -> IndexSet:
        return self.completed | self.failed

    def unfinished(self, done: IndexSet) -> IndexSet:
        return self.assigned - self.finished() - done

    def stealable(self, done: IndexSet) -> IndexSet:
        """Assigned indices no one has started: they may move to another Alloc."""
        if self.deleting:
            return IndexSet()
        return self.assigned - self.claimed - self.finished() - done

    def idle(self, done: IndexSet) -> bool:
        return not self.deleting and self.running == 0 and not self.unfinished(done)


@dataclass
class Progress:
    done: IndexSet
    failed: IndexSet
    failures: int
    running: int


def progress(job_status: Obj, live: list[AllocState]) -> Progress:
    done = _indexes(job_status.get("completedIndexes"))
    failed = _indexes(job_status.get("failedIndexes"))
    failures = int((job_status.get("taskArray") or {}).get("removedFailures") or 0)
    running = 0
    for alloc in live:
        done.update(alloc.completed)
        failed.update(alloc.failed)
        failures += alloc.failures
        running += alloc.running
    failed.difference_update(done)  # an index retried elsewhere and then completed
    return Progress(done, failed, failures, running)


@dataclass(frozen=True)
class TaskSize:
    cpu_millis: int
    memory_bytes: int

    @classmethod
    def of(cls, job: Obj) -> TaskSize:
        containers = (spec(spec(job).get("template") or {}).get("containers")) or [{}]
        requests = ((containers[0].get("resources") or {}).get("requests")
                    or (containers[0].get("resources") or {}).get("limits") or {})
        cpu = int(cpu_millis(requests["cpu"])) if requests.get("cpu") else 0
        memory = int(bytes_value(requests["memory"])) if requests.get("memory") else 0
        return cls(cpu, memory)

    def times(self, slots: int) -> dict[str, str]:
        out = {}
        if self.cpu_millis:
            out["cpu"] = f"{self.cpu_millis * slots}m"
        if self.memory_bytes:
            out["memory"] = str(self.memory_bytes * slots)
        return out

    def fits(self, node_cpu_millis: int, node_memory_bytes: int) -> int:
        """How many tasks of this size a node of that size holds (a big number
        when the task asks for nothing)."""
        counts = [10_000]
        if self.cpu_millis:
            counts.append(node_cpu_millis // self.cpu_millis)
        if self.memory_bytes:
            counts.append(node_memory_bytes // self.memory_bytes)
        return min(counts)


@dataclass(frozen=True)
class Sizing:
    allocs: int
    slots: int


def sizing(parallelism: int, remaining: int, nodes: list[tuple[int, int]],
           task: TaskSize) -> Sizing | None:
    """How many Allocs, of how many slots, for this much work on these nodes
    (allocatable cpu millis, memory bytes each). None: one task fits no node."""
    want = max(1, min(parallelism, remaining))
    largest = max((task.fits(cpu, mem) for cpu, mem in nodes), default=want)
    if largest <= 0:
        return None
    count = min(max(1, len(nodes)), want)
    count = max(count, math.ceil(want / largest))
    count = min(count, MAX_ALLOCS)
    return Sizing(count, max(1, math.ceil(want / count)))


def pool(completions: int, prog: Progress, allocs: list[AllocState]) -> IndexSet:
    """Indices no Alloc holds and no one has finished. A deleting Alloc still holds
    its whole range until it is counted and removed (its tasks may still run)."""
    free = IndexSet.span(0, completions)
    free.difference_update(prog.done)
    free.difference_update(prog.failed)
    for alloc in allocs:
        free.difference_update(alloc.assigned)
        free.difference_update(alloc.claimed)
    return free


def hand_out(free: IndexSet, live: list[AllocState], done: IndexSet) -> dict[str, IndexSet]:
    """Give the pool to the Allocs with the least work, in shares: every Alloc up
    to an equal share of what is left. Returns name → its new ``ranges``."""
    takers = [a for a in live if not a.deleting and not a.lost]
    if not free or not takers:
        return {}
    total = len(free) + sum(len(a.unfinished(done)) for a in takers)
    share = math.ceil(total / len(takers))
    out: dict[str, IndexSet] = {}
    for alloc in sorted(takers, key=lambda a: len(a.unfinished(done))):
        give = min(len(free), share - len(alloc.unfinished(done)))
        if give <= 0:
            continue
        out[alloc.name] = alloc.assigned | free.take_first(give)
    if free:  # rounding: the rest to the first taker
        first = min(takers, key=lambda a: len(a.unfinished(done)))
        out[first.name] = out.get(first.name, first.assigned) | free
    return out


@dataclass(frozen=True)
class Steal:
    victim: str
    victim_ranges: IndexSet
    thief: str
    thief_ranges: IndexSet


def steal(live: list[AllocState], done: IndexSet) -> Steal | None:
    """An Alloc that ran out of work takes half of the largest unclaimed stock of
    another (only a bound Alloc steals: one still pending could not run it), all
    of it from one that is pending or lost."""
    thieves = [a for a in live if a.node and not a.deleting and not a.lost
               and not (a.unfinished(done) - a.claimed)]
    if not thieves:
        return None
    victims = sorted(live, key=lambda a: len(a.stealable(done)), reverse=True)
    for victim in victims:
        stock = victim.stealable(done)
        for thief in thieves:
            if thief is victim or len(stock) < STEAL_MIN * thief.slots:
                continue
            running = victim.node and not victim.lost
            moved = stock.copy().take_last(len(stock) // 2 if running else len(stock))
            return Steal(victim.name, victim.assigned - moved, thief.name,
                         thief.assigned | moved)
    return None
