"""Where a pod may run: node affinity, pod (anti-)affinity, tolerations,
topology spread."""

from __future__ import annotations

from pydantic import Field

from corral.api.kinds.base import Int32, Int64, KubeModel
from corral.api.kinds.meta import LabelSelector


class NodeSelectorRequirement(KubeModel):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt
    values: list[str] | None = None


class NodeSelectorTerm(KubeModel):
    match_expressions: list[NodeSelectorRequirement] | None = None
    match_fields: list[NodeSelectorRequirement] | None = None


class NodeSelector(KubeModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(default_factory=list)


class PreferredSchedulingTerm(KubeModel):
    weight: Int32
    preference: NodeSelectorTerm


class NodeAffinity(KubeModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: (
        list[PreferredSchedulingTerm] | None
    ) = None


class PodAffinityTerm(KubeModel):
    topology_key: str
    label_selector: LabelSelector | None = None
    namespaces: list[str] | None = None
    namespace_selector: LabelSelector | None = None
    match_label_keys: list[str] | None = None
    mismatch_label_keys: list[str] | None = None


class WeightedPodAffinityTerm(KubeModel):
    weight: Int32
    pod_affinity_term: PodAffinityTerm


class PodAffinity(KubeModel):
    """Used for both podAffinity and podAntiAffinity."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = None
    preferred_during_scheduling_ignored_during_execution: (
        list[WeightedPodAffinityTerm] | None
    ) = None


class Affinity(KubeModel):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class Toleration(KubeModel):
    key: str | None = None
    operator: str | None = None  # Equal (default), Exists
    value: str | None = None
    effect: str | None = None  # NoSchedule, PreferNoSchedule, NoExecute; empty = all
    toleration_seconds: Int64 | None = None


class TopologySpreadConstraint(KubeModel):
    max_skew: Int32
    topology_key: str
    when_unsatisfiable: str  # DoNotSchedule, ScheduleAnyway
    label_selector: LabelSelector | None = None
    min_domains: Int32 | None = None
    node_affinity_policy: str | None = None
    node_taints_policy: str | None = None
    match_label_keys: list[str] | None = None
