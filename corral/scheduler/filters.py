"""Feasibility: can this pod run on this node? Each filter returns the reasons
it fails, worded exactly as kube-scheduler's plugins word them, so that the
FailedScheduling message reads like Kubernetes'.

Filters run in kube-scheduler's plugin order and a node's reasons are those of
the first filter that fails (resource fit reports every resource short):

    NodeUnschedulable → TaintToleration → NodeAffinity → NodePorts →
    NodeResourcesFit → InterPodAffinity (anti-affinity)

``node_failures`` covers everything that depends on the node alone, so its
verdict can be cached per node generation. Topology spread with
``DoNotSchedule`` compares a node with every other node; the core checks it
separately with ``SpreadCounts``.
"""

from __future__ import annotations

from collections.abc import Mapping

from corral.scheduler.requirements import (
    NodeSelectorTerm,
    PodAffinityTerm,
    PodRequirements,
    SpreadConstraint,
    Taint,
    Toleration,
    expression_matches,
    selector_matches,
)
from corral.scheduler.snapshot import ClusterSnapshot, NodeInfo

UNSCHEDULABLE = "node(s) were unschedulable"
AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
PORTS_IN_USE = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"
AFFINITY_RULES = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
SPREAD = "node(s) didn't match pod topology spread constraints"
UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")

Reasons = tuple[str, ...]
FITS: Reasons = ()


def node_failures(req: PodRequirements, node: NodeInfo, label_sensitive: bool = True) -> Reasons:
    """Why ``req`` cannot run on ``node`` (empty when it can). With
    ``label_sensitive`` false the caller knows no pod anywhere has anti-affinity."""
    return static_failures(req, node) or dynamic_failures(req, node, label_sensitive)


def static_failures(req: PodRequirements, node: NodeInfo) -> Reasons:
    """The filters that read only the Node object (cordon, taints, affinity):
    their verdict holds until the node itself changes."""
    if node.unschedulable and not tolerated(req.tolerations, UNSCHEDULABLE_TAINT):
        return (UNSCHEDULABLE,)
    if node.blocking_taints:
        taint = untolerated_taint(req.tolerations, node.blocking_taints)
        if taint is not None:
            return (f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}",)
    if (req.node_selector or req.required_terms is not None) and not node_affinity_matches(
            req, node):
        return (AFFINITY_MISMATCH,)
    return FITS


def dynamic_failures(req: PodRequirements, node: NodeInfo, label_sensitive: bool) -> Reasons:
    """The filters that read the pods on the node (ports, resources, anti-affinity)."""
    if req.host_ports and not ports_fit(req, node):
        return (PORTS_IN_USE,)
    if (node.pod_count >= node.alloc_pods or req.cpu > node.alloc_cpu - node.cpu
            or req.memory > node.alloc_memory - node.memory or req.ephemeral
            or req.extended):
        short = insufficient_resources(req, node)
        if short:
            return short
    if req.anti_affinity and not anti_affinity_fits(req, node):
        return (ANTI_AFFINITY,)
    if label_sensitive and node.anti_affinity_pods and not existing_anti_affinity_fits(req, node):
        return (EXISTING_ANTI_AFFINITY,)
    return FITS


def tolerated(tolerations: tuple[Toleration, ...], taint: Taint) -> bool:
    """Kubernetes' ToleratesTaint, for any of the tolerations."""
    for t in tolerations:
        if t.effect and t.effect != taint.effect:
            continue
        if t.key and t.key != taint.key:
            continue
        if t.operator == "Exists" or t.value == taint.value:
            return True
    return False


def untolerated_taint(tolerations: tuple[Toleration, ...],
                      taints: tuple[Taint, ...]) -> Taint | None:
    """The first taint no toleration tolerates, or None."""
    for taint in taints:
        if not tolerated(tolerations, taint):
            return taint
    return None


def node_affinity_matches(req: PodRequirements, node: NodeInfo) -> bool:
    """nodeSelector (every pair) and required node affinity (any term)."""
    labels = node.labels
    for key, value in req.node_selector:
        if labels.get(key) != value:
            return False
    if req.required_terms is None:
        return True
    return any(term_matches(term, node) for term in req.required_terms)


def term_matches(term: NodeSelectorTerm, node: NodeInfo) -> bool:
    """A node selector term: every expression and field must match; an empty
    term matches no node."""
    if not term.expressions and not term.fields:
        return False
    if not all(expression_matches(e, node.labels) for e in term.expressions):
        return False
    fields = {"metadata.name": node.name}
    return all(expression_matches(f, fields) for f in term.fields)


def ports_fit(req: PodRequirements, node: NodeInfo) -> bool:
    """A host port conflicts with one in use on the same protocol and port when
    either binds 0.0.0.0 or both bind the same address."""
    for port in req.host_ports:
        if (port.protocol, port.port) not in node.wildcard_ports:
            continue
        if port.ip == "0.0.0.0" or port in node.ports:
            return False
        if any(p.ip == "0.0.0.0" and p.protocol == port.protocol and p.port == port.port
               for p in node.ports):
            return False
    return True


def insufficient_resources(req: PodRequirements, node: NodeInfo) -> Reasons:
    """NodeResourcesFit: every resource the pod asks for more of than is left.
    A zero request always fits, even on an over-committed node."""
    short: list[str] = []
    if node.pod_count + 1 > node.alloc_pods:
        short.append(TOO_MANY_PODS)
    if req.cpu and req.cpu > node.alloc_cpu - node.cpu:
        short.append("Insufficient cpu")
    if req.memory and req.memory > node.alloc_memory - node.memory:
        short.append("Insufficient memory")
    if req.ephemeral and req.ephemeral > node.alloc_ephemeral - node.ephemeral:
        short.append("Insufficient ephemeral-storage")
    for name, amount in req.extended:
        if amount > node.alloc_extended.get(name, 0) - node.extended.get(name, 0):
            short.append(f"Insufficient {name}")
    return tuple(short)


def anti_affinity_fits(req: PodRequirements, node: NodeInfo) -> bool:
    """The incoming pod's required anti-affinity: no matching pod on the node."""
    for term in req.anti_affinity:
        for pod in node.pods.values():
            if term_selects(term, pod.req.namespace, pod.req.labels):
                return False
    return True


def existing_anti_affinity_fits(req: PodRequirements, node: NodeInfo) -> bool:
    """Pods already on the node whose anti-affinity would select the incoming pod."""
    for _, term in node.anti_affinity_terms:
        if term_selects(term, req.namespace, req.labels):
            return False
    return True


def term_selects(term: PodAffinityTerm, namespace: str,
                 labels: tuple[tuple[str, str], ...]) -> bool:
    if term.selector is None:
        return False
    if not term.all_namespaces and namespace not in term.namespaces:
        return False
    return selector_matches(term.selector, dict(labels))


def spread_selects(constraint: SpreadConstraint, req: PodRequirements,
                   other: PodRequirements) -> bool:
    """Topology spread counts pods of the same namespace its selector matches."""
    if constraint.selector is None or other.namespace != req.namespace:
        return False
    return selector_matches(constraint.selector, dict(other.labels))


def matching_count(constraint: SpreadConstraint, req: PodRequirements, node: NodeInfo) -> int:
    return sum(1 for p in node.pods.values() if spread_selects(constraint, req, p.req))


class SpreadCounts:
    """Per-pod state for DoNotSchedule spread constraints on hostname: matching
    pods per node and the minimum over the nodes the pod's node affinity allows.
    Built once per scheduling attempt (it reads every bound pod)."""

    def __init__(self, snapshot: ClusterSnapshot, req: PodRequirements) -> None:
        self.req = req
        self.hard = tuple(c for c in req.spread if c.hard)
        self.counts: list[Mapping[int, int]] = []
        self.minimums: list[int] = []
        eligible = [n for n in snapshot.nodes if node_affinity_matches(req, n)]
        for constraint in self.hard:
            counts = {n.index: matching_count(constraint, req, n) for n in eligible}
            self.counts.append(counts)
            self.minimums.append(min(counts.values(), default=0))

    def fits(self, node: NodeInfo) -> bool:
        for constraint, counts, minimum in zip(self.hard, self.counts, self.minimums):
            count = counts.get(node.index)
            if count is None:
                continue  # the node's affinity already fails the pod
            if count + int(constraint.match_self) - minimum > constraint.max_skew:
                return False
        return True


class PodAffinity:
    """Per-pod state for required pod affinity on hostname: for each term, the
    nodes holding a pod it selects. Built once per scheduling attempt (it reads
    every bound pod). As in kube-scheduler, when no pod anywhere matches any term
    and the pod matches all of its own, it may go anywhere: the first replica of
    a group that wants to be together has nobody to join yet."""

    def __init__(self, snapshot: ClusterSnapshot, req: PodRequirements) -> None:
        self.terms = req.affinity
        self.nodes: list[set[int]] = [set() for _ in self.terms]
        for node in snapshot.nodes:
            for pod in node.pods.values():
                for term, holding in zip(self.terms, self.nodes):
                    if term_selects(term, pod.req.namespace, pod.req.labels):
                        holding.add(node.index)
        self.anywhere = not any(self.nodes) and all(
            term_selects(term, req.namespace, req.labels) for term in self.terms)

    def fits(self, node: NodeInfo) -> bool:
        return self.anywhere or all(node.index in holding for holding in self.nodes)

    def holds_on(self, node: NodeInfo) -> bool:
        """``fits``, read from the pods ``node`` holds (a node with some pods
        taken away, as preemption tries)."""
        return self.anywhere or all(
            any(term_selects(term, pod.req.namespace, pod.req.labels)
                for pod in node.pods.values())
            for term in self.terms)
