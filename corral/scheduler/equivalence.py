"""Equivalence classes and score caching (Borg's techniques), per node generation.

Three caches, each keyed so that a stale entry simply stops matching:

    NodeScores    per node: its resource score before any pod lands, kept
                  until the node's generation changes (any pod added/removed)
    StaticClass   per class of pods with equal static requirements (tolerations,
                  nodeSelector, node affinity): each node's static verdict,
                  reason and static score, kept until the Node object changes;
                  per block of nodes, the statically feasible nodes and the
                  block's best free score, kept until any node in it changes
    FailureMemo   per class of pods with equal requirements that fit nowhere:
                  every node's reasons, so the next pod of the class re-checks
                  only the nodes that changed since (the snapshot's journal)
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from operator import add

from corral.scheduler.filters import Reasons, static_failures
from corral.scheduler.requirements import PodRequirements
from corral.scheduler.scores import free_score, static_score
from corral.scheduler.snapshot import ClusterSnapshot

UNSEEN = -1  # generations start at 1
NO_NODE = -1  # block maximum of a block without a statically feasible node


class NodeScores:
    """Each node's free score (``scores.free_score``) by generation."""

    def __init__(self, bin_pack: bool) -> None:
        self.bin_pack = bin_pack
        self.generations: list[int] = []
        self.scores: list[int] = []

    def refresh(self, snapshot: ClusterSnapshot, indexes: range | list[int]) -> list[int]:
        """Bring the given nodes' scores up to date; returns the score list."""
        missing = len(snapshot.nodes) - len(self.generations)
        if missing > 0:
            self.generations.extend([UNSEEN] * missing)
            self.scores.extend([0] * missing)
        generations, seen, scores = snapshot.generations, self.generations, self.scores
        for i in indexes:
            if seen[i] != generations[i]:
                scores[i] = free_score(snapshot.nodes[i], self.bin_pack)
                seen[i] = generations[i]
        return scores


class StaticClass:
    """Static verdicts and scores of one class, by node and by block."""

    __slots__ = ("block_best", "block_feasible", "block_seen", "block_spec_seen", "req",
                 "spec_seen", "static_reasons", "static_scores", "uniform")

    def __init__(self, req: PodRequirements) -> None:
        self.req = req
        # No preferred terms and no PreferNoSchedule taint seen: static scores
        # are all equal and block maxima need not add them.
        self.uniform = not req.preferred_terms
        self.spec_seen: list[int] = []
        self.static_reasons: list[Reasons] = []
        self.static_scores: list[int] = []
        self.block_spec_seen: list[int] = []
        self.block_feasible: list[list[int]] = []
        self.block_seen: list[int] = []
        self.block_best: list[int] = []

    def fit_to(self, snapshot: ClusterSnapshot) -> None:
        missing = len(snapshot.nodes) - len(self.spec_seen)
        if missing > 0:
            self.spec_seen.extend([UNSEEN] * missing)
            self.static_reasons.extend([()] * missing)
            self.static_scores.extend([0] * missing)
        missing = snapshot.block_count() - len(self.block_seen)
        if missing > 0:
            self.block_spec_seen.extend([UNSEEN] * missing)
            self.block_feasible.extend([] for _ in range(missing))
            self.block_seen.extend([UNSEEN] * missing)
            self.block_best.extend([NO_NODE] * missing)

    def static_verdict(self, snapshot: ClusterSnapshot, index: int) -> Reasons:
        """The node's static reasons (empty: passes), recomputed if it changed."""
        node = snapshot.nodes[index]
        if self.spec_seen[index] != node.spec_generation:
            reasons = static_failures(self.req, node)
            self.static_reasons[index] = reasons
            self.static_scores[index] = 0 if reasons else static_score(self.req, node)
            if node.prefer_taints:
                self.uniform = False
            self.spec_seen[index] = node.spec_generation
        return self.static_reasons[index]

    def feasible_in(self, snapshot: ClusterSnapshot, block: int) -> list[int]:
        """Indexes of the block's nodes that pass the static filters."""
        if self.block_spec_seen[block] != snapshot.block_spec_versions[block]:
            self.block_feasible[block] = [
                i for i in snapshot.block_range(block) if not self.static_verdict(snapshot, i)]
            self.block_spec_seen[block] = snapshot.block_spec_versions[block]
            self.block_seen[block] = UNSEEN
        return self.block_feasible[block]

    def best_in(self, snapshot: ClusterSnapshot, block: int, node_scores: NodeScores,
                cached: bool) -> int:
        """Upper bound of the block's free + static scores (NO_NODE if empty)."""
        feasible = self.feasible_in(snapshot, block)
        if cached and self.block_seen[block] == snapshot.block_versions[block]:
            return self.block_best[block]
        if not feasible:
            best = NO_NODE
        else:
            scores = node_scores.refresh(snapshot, feasible)
            if self.uniform:  # every static score is the same: add one
                best = max(map(scores.__getitem__, feasible)) + self.static_scores[feasible[0]]
            else:
                best = max(map(add, map(scores.__getitem__, feasible),
                               map(self.static_scores.__getitem__, feasible)))
        self.block_best[block] = best
        self.block_seen[block] = snapshot.block_versions[block]
        return best


class FailureMemo:
    """Why a class fit nowhere, kept current from the snapshot's journal."""

    def __init__(self, snapshot: ClusterSnapshot, reasons: dict[int, Reasons]) -> None:
        self.version = snapshot.version
        self.node_count = len(snapshot.nodes)
        self.reasons = reasons
        self.histogram: Counter[str] = Counter()
        for node_reasons in reasons.values():
            self.histogram.update(node_reasons)

    def still_failing(self, snapshot: ClusterSnapshot,
                      reasons_of: Callable[[int], Reasons]) -> bool:
        """True when no node that changed since became feasible."""
        if self.version < snapshot.changes_base or self.node_count != len(snapshot.nodes):
            return False
        changed = set(snapshot.changes[self.version - snapshot.changes_base:])
        self.version = snapshot.version
        for index in changed:
            fresh = reasons_of(index)
            if not fresh:
                return False
            self.histogram.subtract(self.reasons.get(index, ()))
            self.histogram.update(fresh)
            self.reasons[index] = fresh
        return True


class EquivalenceCache:
    """Static classes, node scores and failure memos of one snapshot. Classes
    beyond ``capacity`` are evicted least recently used first."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self.node_scores = {False: NodeScores(False), True: NodeScores(True)}
        self._static: OrderedDict[Hashable, StaticClass] = OrderedDict()
        self._failures: OrderedDict[Hashable, FailureMemo] = OrderedDict()

    def __len__(self) -> int:
        return len(self._static)

    def static_class(self, req: PodRequirements) -> StaticClass:
        key = req.static_key
        found = self._static.get(key)
        if found is None:
            found = self._static[key] = StaticClass(req)
            if len(self._static) > self.capacity:
                self._static.popitem(last=False)
        else:
            self._static.move_to_end(key)
        return found

    def failure(self, key: Hashable) -> FailureMemo | None:
        return self._failures.get(key)

    def remember_failure(self, key: Hashable, memo: FailureMemo) -> None:
        self._failures[key] = memo
        self._failures.move_to_end(key)
        if len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def forget_failure(self, key: Hashable) -> None:
        self._failures.pop(key, None)
