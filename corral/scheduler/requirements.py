"""A pod's scheduling requirements, parsed once from its wire dict.

Everything the filters and scores look at is parsed here into frozen, hashable
values, so that ``PodRequirements.class_key`` can name the pod's equivalence
class: two pods with equal keys get the same verdict and score on every node.

Requests follow Kubernetes' effective-request rule: the sum over containers
(plus sidecar init containers, ``restartPolicy: Always``), or the largest single
init container if that is more, plus ``spec.overhead``. A resource with a limit
but no request requests its limit (what API defaulting does).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from corral.api.priorityclasses import CLASS_VALUES
from corral.api.quantity import QuantityLike, bytes_value, cpu_millis
from corral.podresources import pod_amounts

HOSTNAME_KEY = "kubernetes.io/hostname"
CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"

# Kubernetes scores a pod that requests nothing as if it asked for this much, so
# that empty pods still spread (pkg/scheduler/util/non_zero.go).
DEFAULT_SCORE_CPU_MILLIS = 100
DEFAULT_SCORE_MEMORY_BYTES = 200 * 1024 * 1024

# Parsing a quantity goes through Decimal; shapes repeat, so remember them.
_cpu_millis = lru_cache(maxsize=8192)(cpu_millis)
_bytes_value = lru_cache(maxsize=8192)(bytes_value)

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # "Equal" or "Exists"
    value: str
    effect: str  # "" tolerates every effect


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str  # NoSchedule, PreferNoSchedule or NoExecute


@dataclass(frozen=True, slots=True)
class Expression:
    """One matchExpressions / matchFields entry (node or label selector)."""

    key: str
    operator: str  # In NotIn Exists DoesNotExist (and Gt Lt for nodes)
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    expressions: tuple[Expression, ...]
    fields: tuple[Expression, ...]  # only metadata.name is defined


@dataclass(frozen=True, slots=True)
class PreferredTerm:
    weight: int
    term: NodeSelectorTerm


@dataclass(frozen=True, slots=True)
class LabelSelector:
    match_labels: Pairs
    expressions: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class PodAffinityTerm:
    """A required pod affinity or anti-affinity term with hostname topology."""

    selector: LabelSelector | None  # None matches no pod (Kubernetes' nil selector)
    namespaces: tuple[str, ...]  # empty: every namespace
    all_namespaces: bool


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """A topologySpreadConstraint on kubernetes.io/hostname."""

    max_skew: int
    hard: bool  # whenUnsatisfiable: DoNotSchedule
    selector: LabelSelector | None
    match_self: bool  # the pod's own labels match: it counts itself on its node


@dataclass(frozen=True, slots=True)
class HostPort:
    ip: str  # "0.0.0.0" binds every address
    protocol: str
    port: int


@dataclass(frozen=True, slots=True)
class PodRequirements:
    """What a pod asks of a node. Identity fields (name, uid, priority) are not
    part of ``class_key``; the owner is, because replicas of one owner spread."""

    namespace: str
    name: str
    uid: str
    labels: Pairs = ()
    owner_uid: str = ""
    priority: int = 0
    preempt_lower: bool = True  # preemptionPolicy PreemptLowerPriority
    cpu: int = 0  # millicores
    memory: int = 0  # bytes
    ephemeral: int = 0  # bytes
    extended: tuple[tuple[str, int], ...] = ()
    node_selector: Pairs = ()
    required_terms: tuple[NodeSelectorTerm, ...] | None = None  # None: no requirement
    preferred_terms: tuple[PreferredTerm, ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    affinity: tuple[PodAffinityTerm, ...] = ()  # required podAffinity
    anti_affinity: tuple[PodAffinityTerm, ...] = ()
    spread: tuple[SpreadConstraint, ...] = ()
    host_ports: tuple[HostPort, ...] = ()
    node_name: str = ""  # spec.nodeName: already bound
    class_key: Hashable = field(init=False, repr=False, compare=False)
    static_key: Hashable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "static_key", (
            self.tolerations, self.node_selector, self.required_terms, self.preferred_terms))
        object.__setattr__(self, "class_key", (
            self.namespace, self.owner_uid, self.cpu, self.memory, self.ephemeral,
            self.extended, self.node_selector, self.required_terms, self.preferred_terms,
            self.tolerations, self.affinity, self.anti_affinity, self.spread, self.host_ports,
        ))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def score_cpu(self) -> int:
        return self.cpu or DEFAULT_SCORE_CPU_MILLIS

    @property
    def score_memory(self) -> int:
        return self.memory or DEFAULT_SCORE_MEMORY_BYTES

    @property
    def has_hard_spread(self) -> bool:
        return any(c.hard for c in self.spread)


def pod_requirements(pod: Mapping[str, Any]) -> PodRequirements:
    """Parse a Pod's wire dict (camelCase) into its scheduling requirements."""
    meta: Mapping[str, Any] = pod.get("metadata") or {}
    spec: Mapping[str, Any] = pod.get("spec") or {}
    labels = _pairs(meta.get("labels"))
    requests = effective_requests(spec)
    affinity: Mapping[str, Any] = spec.get("affinity") or {}
    node_affinity: Mapping[str, Any] = affinity.get("nodeAffinity") or {}
    return PodRequirements(
        namespace=meta.get("namespace") or "default",
        name=meta.get("name") or "",
        uid=meta.get("uid") or "",
        labels=labels,
        owner_uid=_controller_uid(meta),
        priority=_priority(spec),
        preempt_lower=spec.get("preemptionPolicy", "PreemptLowerPriority") != "Never",
        cpu=requests.pop(CPU, 0),
        memory=requests.pop(MEMORY, 0),
        ephemeral=requests.pop(EPHEMERAL, 0),
        extended=tuple(sorted((k, v) for k, v in requests.items() if v > 0)),
        node_selector=_pairs(spec.get("nodeSelector")),
        required_terms=_required_terms(node_affinity),
        preferred_terms=_preferred_terms(node_affinity),
        tolerations=tuple(_toleration(t) for t in spec.get("tolerations") or ()),
        affinity=_pod_affinity_terms(affinity.get("podAffinity"),
                                     meta.get("namespace") or "default"),
        anti_affinity=_pod_affinity_terms(affinity.get("podAntiAffinity"),
                                          meta.get("namespace") or "default"),
        spread=_spread(spec.get("topologySpreadConstraints") or (), dict(labels)),
        host_ports=_host_ports(spec),
        node_name=spec.get("nodeName") or "",
    )


def effective_requests(spec: Mapping[str, Any]) -> dict[str, int]:
    """Resource name → amount (cpu in millis, the rest in bytes or units)."""
    overhead = {k: quantity_amount(k, v) for k, v in (spec.get("overhead") or {}).items()}
    return pod_amounts(spec, _container_requests, overhead)


# What a quantity the API would refuse today (stored before the bound, or written
# around it) requests: more than any node has, so the pod is reported
# unschedulable with an event instead of failing the scheduler's handler.
UNSATISFIABLE = 2**63


def quantity_amount(resource: str, quantity: QuantityLike,
                    unparseable: int = UNSATISFIABLE) -> int:
    """A quantity in the scheduler's unit for ``resource``: cpu in millicores;
    ``unparseable`` for one that does not parse."""
    try:
        if resource == CPU:
            return int(_cpu_millis(quantity))
        return int(_bytes_value(quantity))
    except (ValueError, TypeError):
        return unparseable


def _container_requests(container: Mapping[str, Any]) -> dict[str, int]:
    resources: Mapping[str, Any] = container.get("resources") or {}
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    return {name: quantity_amount(name, q) for name, q in merged.items()}


def _pairs(mapping: Mapping[str, str] | None) -> Pairs:
    return tuple(sorted((mapping or {}).items()))


def _controller_uid(meta: Mapping[str, Any]) -> str:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def _priority(spec: Mapping[str, Any]) -> int:
    if spec.get("priority") is not None:
        return int(spec["priority"])
    return CLASS_VALUES.get(spec.get("priorityClassName") or "", 0)


def _toleration(raw: Mapping[str, Any]) -> Toleration:
    return Toleration(
        key=raw.get("key") or "",
        operator=raw.get("operator") or "Equal",
        value=raw.get("value") or "",
        effect=raw.get("effect") or "",
    )


def taint_of(raw: Mapping[str, Any]) -> Taint:
    return Taint(key=raw.get("key") or "", value=raw.get("value") or "",
                 effect=raw.get("effect") or "")


def _expressions(raw: Any) -> tuple[Expression, ...]:
    return tuple(
        Expression(e.get("key") or "", e.get("operator") or "", tuple(e.get("values") or ()))
        for e in raw or ()
    )


def _node_term(raw: Mapping[str, Any]) -> NodeSelectorTerm:
    return NodeSelectorTerm(_expressions(raw.get("matchExpressions")),
                            _expressions(raw.get("matchFields")))


def _required_terms(node_affinity: Mapping[str, Any]) -> tuple[NodeSelectorTerm, ...] | None:
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return None
    return tuple(_node_term(t) for t in required.get("nodeSelectorTerms") or ())


def _preferred_terms(node_affinity: Mapping[str, Any]) -> tuple[PreferredTerm, ...]:
    preferred = node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    return tuple(PreferredTerm(int(p.get("weight") or 0), _node_term(p.get("preference") or {}))
                 for p in preferred)


def label_selector(raw: Mapping[str, Any] | None) -> LabelSelector | None:
    if raw is None:
        return None
    return LabelSelector(_pairs(raw.get("matchLabels")), _expressions(raw.get("matchExpressions")))


def _pod_affinity_terms(rules: Mapping[str, Any] | None,
                        namespace: str) -> tuple[PodAffinityTerm, ...]:
    """The required terms of a podAffinity or podAntiAffinity."""
    terms = []
    for raw in (rules or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or ():
        if raw.get("topologyKey") != HOSTNAME_KEY:
            continue  # only hostname topology is supported (see README)
        # A namespaceSelector needs namespace labels the snapshot does not hold;
        # any selector is read as "every namespace" (for anti-affinity, erring on
        # the side of spreading; for affinity, on the side of placing).
        all_ns = raw.get("namespaceSelector") is not None
        namespaces = tuple(raw.get("namespaces") or ()) or (namespace,)
        terms.append(PodAffinityTerm(label_selector(raw.get("labelSelector")),
                                     () if all_ns else namespaces, all_ns))
    return tuple(terms)


def _spread(raw: Any, labels: Mapping[str, str]) -> tuple[SpreadConstraint, ...]:
    constraints = []
    for c in raw:
        if c.get("topologyKey") != HOSTNAME_KEY:
            continue  # only hostname topology is supported (see README)
        selector = label_selector(c.get("labelSelector"))
        constraints.append(SpreadConstraint(
            max_skew=int(c.get("maxSkew") or 1),
            hard=c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule",
            selector=selector,
            match_self=selector is not None and selector_matches(selector, labels),
        ))
    return tuple(constraints)


def _host_ports(spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    ports = []
    for container in spec.get("containers") or ():
        for p in container.get("ports") or ():
            if p.get("hostPort"):
                ports.append(HostPort(p.get("hostIP") or "0.0.0.0",
                                      p.get("protocol") or "TCP", int(p["hostPort"])))
    return tuple(ports)


def expression_matches(expr: Expression, labels: Mapping[str, str]) -> bool:
    """Label-selector semantics: In NotIn Exists DoesNotExist, and node Gt Lt."""
    op = expr.operator
    present = expr.key in labels
    if op == "In":
        return present and labels[expr.key] in expr.values
    if op == "NotIn":
        return not present or labels[expr.key] not in expr.values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(expr.values) == 1:
        try:
            have, bound = int(labels[expr.key]), int(expr.values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            return False
    return all(expression_matches(e, labels) for e in selector.expressions)
