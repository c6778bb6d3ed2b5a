"""Preemption: for a pod that fits nowhere, the node and the smallest set of
lowest-priority pods whose eviction lets it fit.

Like kube-scheduler's DefaultPreemption, per node:

1. skip the node if a static filter fails (cordon, taints, affinity) or the
   pod's required pod affinity does: evicting pods cannot help there
   ("Preemption is not helpful for scheduling"); a victim set never takes away
   the pods the affinity needs;
2. take every pod the preemptor may evict (``bands.may_preempt``: strictly
   lower priority, and production/monitoring only by a higher band); if the
   pod does not fit even with all of them gone, the node has no candidate
   ("No preemption victims found for incoming pod");
3. reprieve victims one by one, most important first, keeping each reprieve
   that still lets the pod fit — what is left is a minimal set of the least
   important pods.

Among candidate nodes the pick minimises, in order: the highest victim
priority, the sum of victim priorities, the number of victims, the node name.
Hard topology spread is not considered (victims rarely change it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corral.scheduler.bands import may_preempt
from corral.scheduler.filters import PodAffinity, dynamic_failures, static_failures
from corral.scheduler.requirements import PodRequirements, pod_requirements
from corral.scheduler.snapshot import ClusterSnapshot, NodeInfo, PodInfo

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
POLICY_NEVER = "preemption: not eligible due to preemptionPolicy=Never."


@dataclass(frozen=True)
class Preemption:
    """Evict ``victims`` (gracefully) and nominate ``node`` for the preemptor."""

    node: str
    victims: tuple[PodInfo, ...]


@dataclass(frozen=True)
class PreemptionResult:
    preemption: Preemption | None
    message: str  # kube's PostFilter text, appended to the FitError message on failure


def find_preemption(snapshot: ClusterSnapshot,
                    pod: Mapping[str, Any] | PodRequirements) -> PreemptionResult:
    """The best preemption for ``pod`` on the snapshot, or why there is none."""
    req = pod if isinstance(pod, PodRequirements) else pod_requirements(pod)
    if not req.preempt_lower:
        return PreemptionResult(None, POLICY_NEVER)
    outcomes: Counter[str] = Counter()
    candidates: list[Preemption] = []
    affinity = PodAffinity(snapshot, req) if req.affinity else None
    for node in snapshot.nodes:
        if static_failures(req, node) or (affinity is not None and not affinity.fits(node)):
            outcomes[NOT_HELPFUL] += 1
            continue
        victims = select_victims(req, node, affinity)
        if victims is None:
            outcomes[NO_VICTIMS] += 1
        else:
            candidates.append(Preemption(node.name, tuple(victims)))
    if not candidates:
        return PreemptionResult(None, _message(len(snapshot.nodes), outcomes))
    return PreemptionResult(min(candidates, key=_cost), "")


def select_victims(req: PodRequirements, node: NodeInfo,
                   affinity: PodAffinity | None = None) -> list[PodInfo] | None:
    """A minimal list of the least important pods to evict from ``node`` so that
    ``req`` fits (empty if it fits already), or None if no eviction helps."""
    def fits(victims: list[PodInfo]) -> bool:
        trial = node.without(victims)
        return not dynamic_failures(req, trial, label_sensitive=True) and (
            affinity is None or affinity.holds_on(trial))

    if fits([]):
        return []
    eligible = [p for p in node.pods.values() if may_preempt(req.priority, p.priority)]
    if not eligible or not fits(eligible):
        return None
    victims = sorted(eligible, key=lambda p: p.priority)
    for pod in sorted(eligible, key=lambda p: p.priority, reverse=True):
        remaining = [v for v in victims if v is not pod]
        if fits(remaining):
            victims = remaining
    return victims


def _cost(candidate: Preemption) -> tuple[int, int, int, str]:
    priorities = [v.priority for v in candidate.victims]
    return (max(priorities, default=-(2**31)), sum(priorities), len(priorities),
            candidate.node)


def _message(total: int, outcomes: Counter[str]) -> str:
    if total == 0:
        return ""  # nothing to say beyond "no nodes available to schedule pods"
    parts = sorted(f"{count} {reason}" for reason, count in outcomes.items())
    return f"preemption: 0/{total} nodes are available: {', '.join(parts)}."
