"""``schedule(snapshot, pod) -> Decision``: the pure scheduling core.

Nodes are grouped in blocks of 64 (``snapshot.BLOCK_SIZE``). One attempt:

1. Sample: from a rotating start block (``memory.next_block``), take whole
   blocks until they hold ``nodes_to_find`` nodes that pass the pod's static
   filters (kube-scheduler's percentageOfNodesToScore, counted in nodes that
   pass cordon/taints/affinity; if none of them fits, the window grows).
2. Bound: each block's best free score (node score before the pod lands,
   plus the static score) bounds what any of its nodes can score; blocks are
   visited best bound first, and inside a block nodes are visited best first.
3. Score exactly only nodes whose bound beats the best exact score so far:
   resource fit, ports, anti-affinity, spread, affinity, then the exact score — and stop
   once ``EXACT_SCORES`` nodes that fit were scored (relaxed, like Borg's
   "enough feasible machines"): the pick is then the best of the best-bounded
   nodes, within the sampled window's few points of the true best.

Ties: blocks and nodes are visited from a random rotation and the exactly
scored nodes with the best score are chosen among uniformly (seedable rng).
A node whose bound can at most tie the best is not scored, so ties are broken
randomly among the nodes scored, not among every tied node.

The core does not bind: the caller binds and then tells the snapshot
(``snapshot.add_pod(pod, decision.node)``), like kube-scheduler's "assume".
Nor does it change the snapshot: what it learns for the next attempt (the
equivalence cache, the rotating cursor) lives in a ``CoreMemory`` the caller
owns and passes in, one per snapshot.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.scheduler.equivalence import (
    NO_NODE,
    EquivalenceCache,
    FailureMemo,
    NodeScores,
    StaticClass,
)
from corral.scheduler.filters import (
    AFFINITY_RULES,
    SPREAD,
    PodAffinity,
    Reasons,
    SpreadCounts,
    dynamic_failures,
)
from corral.scheduler.requirements import PodRequirements, pod_requirements
from corral.scheduler.scores import bin_pack_bound, dynamic_score, spreading_bonus_bound
from corral.scheduler.snapshot import ClusterSnapshot

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
# Relaxed scoring: with spreading, hundreds of sampled nodes sit within a point
# or two of the best bound; score at most this many fitting nodes exactly.
EXACT_SCORES = 16


@dataclass(frozen=True)
class SchedulerOptions:
    """Scoring policy and the speed techniques, each switchable for the benchmark.
    (Incremental accounting is a property of the snapshot: ``incremental``.)"""

    bin_pack: bool = False  # most-allocated instead of least-allocated
    equivalence_classes: bool = True  # share static verdicts between like pods
    score_cache: bool = True  # keep node and block scores until a node changes
    percentage_of_nodes_to_score: int = 0  # 0: adaptive; 100: every node (no sampling)
    rng: random.Random = field(default_factory=random.Random, compare=False)


@dataclass
class CoreMemory:
    """What the core carries from one attempt to the next on the same snapshot.
    The caller (the loop, a benchmark, a test) owns it; without one, each call
    starts cold: correct, only slower."""

    cache: EquivalenceCache = field(default_factory=EquivalenceCache)
    next_block: int = 0  # where the next sampled window starts (rotates)


@dataclass(frozen=True)
class Decision:
    """Where the pod goes, or why it goes nowhere."""

    node: str | None
    reasons: Mapping[str, int]  # reason → number of nodes, empty on success
    message: str  # "" on success; Kubernetes' FitError wording on failure
    sampled: int = 0  # nodes in the sampled window that pass the static filters
    scored: int = 0  # nodes checked and scored exactly


def schedule(snapshot: ClusterSnapshot, pod: Mapping[str, Any] | PodRequirements,
             options: SchedulerOptions | None = None,
             memory: CoreMemory | None = None) -> Decision:
    """Pick a node for ``pod`` (a Pod wire dict or its parsed requirements)."""
    options = options or _DEFAULT_OPTIONS
    memory = memory or CoreMemory()
    req = pod if isinstance(pod, PodRequirements) else pod_requirements(pod)
    n = len(snapshot.nodes)
    if n == 0:
        return Decision(None, {}, fit_error_message(0, {}))
    search = _Search(snapshot, req, options, memory)
    memo_key = search.memo_key()
    cache = memory.cache
    memo = cache.failure(memo_key) if memo_key is not None else None
    if memo is not None:
        if memo.still_failing(snapshot, search.reasons):
            return _failure(n, memo.histogram)
        cache.forget_failure(memo_key)
    index = search.run(nodes_to_find(n, options.percentage_of_nodes_to_score))
    if index < 0:
        memo = FailureMemo(snapshot, search.all_reasons())
        if memo_key is not None:
            cache.remember_failure(memo_key, memo)
        return _failure(n, memo.histogram, search.sampled, search.scored)
    return Decision(snapshot.nodes[index].name, {}, "", search.sampled, search.scored)


def nodes_to_find(n: int, percentage: int) -> int:
    """How many feasible nodes to sample (kube-scheduler's numFeasibleNodesToFind):
    all below 100 nodes; else ``percentage`` of them, or adaptively 50% - n/125
    with a 5% floor, never fewer than 100."""
    if n < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return n
    adaptive = percentage or max(50 - n // 125, MIN_FEASIBLE_NODES_PERCENTAGE)
    return max(n * adaptive // 100, MIN_FEASIBLE_NODES_TO_FIND)


NO_NODES = "no nodes available to schedule pods"  # kube-scheduler's words for an empty cluster


def fit_error_message(total: int, reasons: Mapping[str, int]) -> str:
    """kube-scheduler's FitError text: "0/N nodes are available: <count> <reason>,
    …." with the "<count> <reason>" strings sorted as strings."""
    if total == 0:
        return NO_NODES
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items() if count > 0)
    if not parts:
        return f"0/{total} nodes are available."
    return f"0/{total} nodes are available: {', '.join(parts)}."


class _Search:
    """One scheduling attempt's state: the sample, the bounds, the best so far."""

    def __init__(self, snapshot: ClusterSnapshot, req: PodRequirements,
                 options: SchedulerOptions, memory: CoreMemory) -> None:
        self.snapshot = snapshot
        self.req = req
        self.options = options
        self.rng = options.rng
        self.memory = memory
        self.cache = memory.cache
        self.static = (self.cache.static_class(req) if options.equivalence_classes
                       else StaticClass(req))
        self.static.fit_to(snapshot)
        self.node_scores = (self.cache.node_scores[options.bin_pack] if options.score_cache
                            else NodeScores(options.bin_pack))
        self.spread = SpreadCounts(snapshot, req) if req.has_hard_spread else None
        self.affinity = PodAffinity(snapshot, req) if req.affinity else None
        self.label_sensitive = snapshot.anti_affinity_pod_count > 0
        self.bonus = spreading_bonus_bound(req)
        if options.bin_pack:
            self.bonus += bin_pack_bound(req, snapshot.min_alloc_cpu, snapshot.min_alloc_memory)
        self.best_index = -1
        self.best_score = NO_NODE
        self.ties = 0
        self.sampled = 0
        self.scored = 0
        self.fitting = 0  # scored nodes that fit

    def memo_key(self) -> Hashable | None:
        """Pods with equal keys fail on the same nodes for the same reasons."""
        if (not self.options.equivalence_classes or self.spread is not None
                or self.affinity is not None):
            return None  # the verdict depends on where other pods are
        if self.label_sensitive:
            return (self.req.class_key, self.req.labels)
        return self.req.class_key

    def run(self, wanted: int) -> int:
        """Search windows of blocks from the rotating start until a node fits or
        every block was seen; returns the chosen node index or -1."""
        snapshot = self.snapshot
        blocks = snapshot.block_count()
        start = self.memory.next_block % blocks
        visited = 0
        while visited < blocks and self.best_index < 0:
            window = self._window(start + visited, blocks - visited, wanted)
            visited += len(window)
            self._search(window)
        self.memory.next_block = (start + visited) % blocks
        return self.best_index

    def _window(self, first: int, available: int, wanted: int) -> list[int]:
        blocks = self.snapshot.block_count()
        window: list[int] = []
        found = 0
        while found < wanted and len(window) < available:
            block = (first + len(window)) % blocks
            window.append(block)
            found += len(self.static.feasible_in(self.snapshot, block))
        self.sampled += found
        return window

    def _search(self, window: list[int]) -> None:
        snapshot, static, cached = self.snapshot, self.static, self.options.score_cache
        if not snapshot.incremental:
            self._recount(window)
        bounds = [(static.best_in(snapshot, b, self.node_scores, cached), b)
                  for b in _rotated(window, self.rng)]
        bounds.sort(key=_first, reverse=True)
        for bound, block in bounds:
            if bound == NO_NODE or bound + self.bonus <= self.best_score:
                break
            if self.fitting >= EXACT_SCORES:
                break
            self._search_block(block)

    def _search_block(self, block: int) -> None:
        static = self.static
        feasible = static.feasible_in(self.snapshot, block)
        scores, statics = self.node_scores.scores, static.static_scores
        bounds = [(scores[i] + statics[i], i) for i in _rotated(feasible, self.rng)]
        bounds.sort(key=_first, reverse=True)
        bonus = self.bonus
        for bound, index in bounds:
            if bound + bonus <= self.best_score or self.fitting >= EXACT_SCORES:
                break
            self._consider(index)

    def _consider(self, index: int) -> None:
        node = self.snapshot.nodes[index]
        self.scored += 1
        if dynamic_failures(self.req, node, self.label_sensitive):
            return
        if self.spread is not None and not self.spread.fits(node):
            return
        if self.affinity is not None and not self.affinity.fits(node):
            return
        self.fitting += 1
        score = self.static.static_scores[index] + dynamic_score(
            self.req, node, self.options.bin_pack)
        if score > self.best_score:
            self.best_index, self.best_score, self.ties = index, score, 1
        elif score == self.best_score:
            self.ties += 1
            if self.rng.random() * self.ties < 1.0:
                self.best_index = index

    def _recount(self, window: list[int]) -> None:
        """Without incremental accounting, usage is summed from pods each time."""
        for block in window:
            for index in self.snapshot.block_range(block):
                self.snapshot.nodes[index].recount()

    def reasons(self, index: int) -> Reasons:
        """Why the pod does not fit node ``index`` (empty when it does)."""
        static = self.static.static_verdict(self.snapshot, index)
        if static:
            return static
        node = self.snapshot.nodes[index]
        if not self.snapshot.incremental:
            node.recount()
        dynamic = dynamic_failures(self.req, node, self.label_sensitive)
        if dynamic:
            return dynamic
        if self.spread is not None and not self.spread.fits(node):
            return (SPREAD,)
        if self.affinity is not None and not self.affinity.fits(node):
            return (AFFINITY_RULES,)
        return ()

    def all_reasons(self) -> dict[int, Reasons]:
        self.static.fit_to(self.snapshot)
        return {i: self.reasons(i) for i in range(len(self.snapshot.nodes))}


def _first(pair: tuple[int, int]) -> int:
    return pair[0]


def _rotated(items: list[int], rng: random.Random) -> list[int]:
    """The list from a random position: equal bounds then sort in random order."""
    if len(items) < 2:
        return items
    k = int(rng.random() * len(items))
    return items[k:] + items[:k]


def _failure(total: int, histogram: Counter[str], sampled: int = 0, scored: int = 0) -> Decision:
    reasons = {reason: count for reason, count in histogram.items() if count > 0}
    return Decision(None, reasons, fit_error_message(total, reasons), sampled, scored)


_DEFAULT_OPTIONS = SchedulerOptions()
