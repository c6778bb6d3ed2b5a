"""A task array's bookkeeping on the node: which indices to claim, launch, retry,
and what to report. Pure state (no I/O), driven by the Alloc worker.

    spec.ranges (assigned) ──claim ahead──► claims, written to status.claimed
        │                                    before anything in them is launched
        ▼ committed claims
    launch (at most a window ahead of the slots) ──► executor
        ▼ exit
    0 ──► completed      ≠0 ──► failures[i] += 1 ──► retry after a back-off, unless
                                  past backoffLimitPerIndex ──► failed for good

The controller never takes an index back once it is in ``status.claimed``, and a
claim is written (a compare-and-swap on the Alloc) before the index is launched:
so an index handed elsewhere was never started here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from corral.indexset import IndexSet
from corral.objects import Obj, spec, status

RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 30.0
RECENT_FAILURES = 100  # failedTasks reported: the latest, with their exit codes


@dataclass
class Failure:
    index: int
    exit_code: int
    reason: str
    failures: int


@dataclass
class ClaimPace:
    """How far ahead of its launches a node claims: about ``seconds`` of work at
    the rate its tasks complete. Claims are written with the status, at most every
    flush, and only claimed indices may be launched: claiming too little leaves
    the slots idle between flushes; too much leaves work on a node that another,
    idle one could have stolen."""

    seconds: float
    rate: float = 0.0  # completions per second, smoothed
    _counted: int = 0
    _at: float | None = None

    def observe(self, completed: int, now: float) -> None:
        """``completed`` tasks in all by ``now`` (monotonic seconds)."""
        if self._at is not None and now > self._at:
            recent = (completed - self._counted) / (now - self._at)
            self.rate = 0.7 * self.rate + 0.3 * recent
        self._counted, self._at = completed, now

    def ahead(self, floor: int) -> int:
        return max(floor, int(self.rate * self.seconds))


@dataclass
class TaskArray:
    slots: int
    limit_per_index: int | None  # None: retried until the controller gives up on the Job
    assigned: IndexSet = field(default_factory=IndexSet)
    claimed: IndexSet = field(default_factory=IndexSet)  # as written to the API
    claiming: IndexSet = field(default_factory=IndexSet)  # to be written next
    completed: IndexSet = field(default_factory=IndexSet)
    failed_final: IndexSet = field(default_factory=IndexSet)
    launched: IndexSet = field(default_factory=IndexSet)  # running or queued now
    failures: dict[int, Failure] = field(default_factory=dict)  # by index; sparse
    failed_attempts: int = 0
    retry_at: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_alloc(cls, alloc: Obj) -> TaskArray:
        """Resume from what the Alloc records (an agent restart keeps its claims)."""
        s, st = spec(alloc), status(alloc)
        array = cls(int(s.get("slots") or 1), s.get("backoffLimitPerIndex"))
        array.assigned = IndexSet.parse(s.get("ranges"))
        array.claimed = IndexSet.parse(st.get("claimed"))
        array.completed = IndexSet.parse(st.get("completed"))
        array.failed_final = IndexSet.parse(st.get("failedIndexes"))
        array.failed_attempts = int(st.get("failures") or 0)
        for f in st.get("failedTasks") or ():
            array.failures[int(f["index"])] = Failure(int(f["index"]), int(f["exitCode"]),
                                                      str(f.get("reason") or ""),
                                                      int(f.get("failures") or 1))
        return array

    def reassigned(self, ranges: str | None) -> None:
        """spec.ranges changed (the controller moved unclaimed work). Claims not yet
        written may name indices it has just given to another node: they go."""
        self.assigned = IndexSet.parse(ranges)
        self.claiming = self.claiming & self.assigned

    def finished(self) -> IndexSet:
        return self.completed | self.failed_final

    def unfinished_claims(self) -> IndexSet:
        return self.claimed - self.finished()

    # -- claiming ------------------------------------------------------------------

    def claim_ahead(self, ahead: int) -> bool:
        """Plan claims so that about ``ahead`` claimed indices wait to be launched;
        True if there is something new to write."""
        waiting = len(self.claimed - self.finished() - self.launched) + len(self.claiming)
        if waiting >= ahead:
            return bool(self.claiming)
        free = self.assigned - self.claimed - self.claiming - self.finished()
        self.claiming.update(free.take_first(ahead - waiting))
        return bool(self.claiming)

    def commit_claims(self, written: IndexSet) -> None:
        """``written`` (what the last status carried) is now on record."""
        self.claimed.update(written)
        self.claiming.difference_update(written)

    # -- launching -----------------------------------------------------------------

    def to_launch(self, window: int, now: float) -> list[int]:
        """Claimed indices to hand the executor, keeping ``window`` launched."""
        room = window - len(self.launched)
        if room <= 0:
            return []
        ready = self.claimed - self.finished() - self.launched
        out: list[int] = []
        for start, end in ready.intervals():
            for index in range(start, end):
                if self.retry_at.get(index, 0.0) > now:
                    continue
                out.append(index)
                if len(out) >= room:
                    break
            if len(out) >= room:
                break
        for index in out:
            self.launched.add(index)
            self.retry_at.pop(index, None)
        return out

    def adopt(self, running: list[int]) -> None:
        """Tasks the executor already has (this agent restarted)."""
        for index in running:
            self.launched.add(index)

    # -- exits ---------------------------------------------------------------------

    def exited(self, index: int, code: int, reason: str, now: float | None = None) -> None:
        self.launched.discard(index)
        if index in self.finished():
            return  # a duplicate report (replayed after a reconnect)
        if code == 0:
            self.completed.add(index)
            return
        self.failed_attempts += 1
        previous = self.failures.get(index)
        count = (previous.failures if previous else 0) + 1
        self.failures[index] = Failure(index, code, reason, count)
        if self.limit_per_index is not None and count > self.limit_per_index:
            self.failed_final.add(index)
            return
        delay = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (count - 1))
        self.retry_at[index] = (now if now is not None else time.monotonic()) + delay

    def interrupted(self, index: int) -> None:
        """Killed because the Alloc is going away: not a failure; the index stays
        unfinished, and its owner hands it to another Alloc."""
        self.launched.discard(index)

    def next_retry(self) -> float | None:
        return min(self.retry_at.values(), default=None)

    def idle(self) -> bool:
        """Nothing left to run here (until the controller assigns more)."""
        return not self.launched and not (self.assigned - self.finished())

    # -- reporting -----------------------------------------------------------------

    def status_fields(self) -> Obj:
        recent = sorted(self.failures.values(), key=lambda f: f.index)[-RECENT_FAILURES:]
        return {
            # Launched tasks beyond the slots wait in the executor's queue.
            "running": min(len(self.launched), self.slots),
            "claimed": (self.claimed | self.claiming).format(),
            "completed": self.completed.format(),
            "failedIndexes": self.failed_final.format(),
            "failures": self.failed_attempts,
            "failedTasks": [{"index": f.index, "exitCode": f.exit_code, "reason": f.reason,
                             "failures": f.failures} for f in recent],
        }
