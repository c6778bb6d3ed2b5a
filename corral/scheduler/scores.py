"""Scores: how good a feasible node is for a pod (higher is better).

Each part is 0..100 and depends on the pod and that one node only — unlike
kube-scheduler, which normalises some parts across the scored nodes. Keeping
scores per node is what lets the equivalence cache reuse a node's score until
the node changes. Weights follow kube-scheduler's default profile:

    part                         weight   0..100 from
    resources (NodeResourcesFit)    1     least-allocated (spread, default) or
                                          most-allocated (bin-pack), mean of cpu
                                          and memory after placing the pod
    PreferNoSchedule taints         3     100 // (1 + untolerated such taints)
    preferred node affinity         2     100 * matched weight // total weight
    owner spread (SelectorSpread)   2     100 // (1 + pods of the same controller)
    topology spread ScheduleAnyway  2     100 // (1 + matching pods), per constraint

Requests of zero count as 100m CPU and 200Mi memory here, as in Kubernetes, so
that empty pods still spread.
"""

from __future__ import annotations

from corral.scheduler.filters import matching_count, term_matches, tolerated
from corral.scheduler.requirements import PodRequirements
from corral.scheduler.snapshot import NodeInfo

MAX_SCORE = 100
TAINT_WEIGHT = 3
AFFINITY_WEIGHT = 2
OWNER_SPREAD_WEIGHT = 2
TOPOLOGY_SPREAD_WEIGHT = 2


def node_score(req: PodRequirements, node: NodeInfo, bin_pack: bool = False) -> int:
    """The pod's score on a node it fits."""
    return static_score(req, node) + dynamic_score(req, node, bin_pack)


def static_score(req: PodRequirements, node: NodeInfo) -> int:
    """The parts that read only the Node object (taints, preferred affinity)."""
    score = TAINT_WEIGHT * MAX_SCORE
    if node.prefer_taints:
        score = TAINT_WEIGHT * prefer_no_schedule_score(req, node)
    if req.preferred_terms:
        score += AFFINITY_WEIGHT * preferred_affinity_score(req, node)
    return score


def dynamic_score(req: PodRequirements, node: NodeInfo, bin_pack: bool) -> int:
    """The parts that read the pods on the node (resources, spreading)."""
    score = resource_score(req, node, bin_pack)
    if req.owner_uid:
        score += OWNER_SPREAD_WEIGHT * owner_spread_score(req, node)
    if req.spread:
        score += TOPOLOGY_SPREAD_WEIGHT * topology_spread_score(req, node)
    return score


def spreading_bonus_bound(req: PodRequirements) -> int:
    """The most ``dynamic_score`` adds beyond the resource part."""
    bound = OWNER_SPREAD_WEIGHT * MAX_SCORE if req.owner_uid else 0
    return bound + (TOPOLOGY_SPREAD_WEIGHT * MAX_SCORE if req.spread else 0)


def free_score(node: NodeInfo, bin_pack: bool) -> int:
    """The resource part before any pod lands: for least-allocated an upper
    bound of ``resource_score`` for every pod (a pod only adds allocation)."""
    cpu = _allocated(node.score_cpu, node.alloc_cpu, bin_pack)
    memory = _allocated(node.score_memory, node.alloc_memory, bin_pack)
    return (cpu + memory) // 2


def bin_pack_bound(req: PodRequirements, min_alloc_cpu: int, min_alloc_memory: int) -> int:
    """How much placing ``req`` can raise a most-allocated score on any node
    (its share of the smallest allocatable), rounded up."""
    cpu = -(-req.score_cpu * MAX_SCORE // max(min_alloc_cpu, 1))
    memory = -(-req.score_memory * MAX_SCORE // max(min_alloc_memory, 1))
    return (cpu + memory) // 2 + 1


def resource_score(req: PodRequirements, node: NodeInfo, bin_pack: bool) -> int:
    cpu = _allocated(node.score_cpu + req.score_cpu, node.alloc_cpu, bin_pack)
    memory = _allocated(node.score_memory + req.score_memory, node.alloc_memory, bin_pack)
    return (cpu + memory) // 2


def _allocated(used: int, allocatable: int, bin_pack: bool) -> int:
    if allocatable <= 0 or used > allocatable:
        return 0
    if bin_pack:
        return used * MAX_SCORE // allocatable
    return (allocatable - used) * MAX_SCORE // allocatable


def prefer_no_schedule_score(req: PodRequirements, node: NodeInfo) -> int:
    untolerated = sum(1 for t in node.prefer_taints if not tolerated(req.tolerations, t))
    return MAX_SCORE // (1 + untolerated)


def preferred_affinity_score(req: PodRequirements, node: NodeInfo) -> int:
    total = sum(p.weight for p in req.preferred_terms)
    if total <= 0:
        return 0
    matched = sum(p.weight for p in req.preferred_terms if term_matches(p.term, node))
    return matched * MAX_SCORE // total


def owner_spread_score(req: PodRequirements, node: NodeInfo) -> int:
    return MAX_SCORE // (1 + node.owner_counts.get(req.owner_uid, 0))


def topology_spread_score(req: PodRequirements, node: NodeInfo) -> int:
    soft = [c for c in req.spread if not c.hard]
    if not soft:
        return 0
    return sum(MAX_SCORE // (1 + matching_count(c, req, node)) for c in soft) // len(soft)
