"""The resources the API server serves: group, version, kind, plural, scope.

This table is the one place that says which kinds exist; discovery, OpenAPI,
routing, tables and storage keys all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ("status",)
    categories: tuple[str, ...] = ()
    # Spec fields whose change bumps metadata.generation; kinds without a spec
    # (ConfigMap, Secret, Endpoints, Event) never bump it after creation.
    has_spec: bool = True
    verbs: tuple[str, ...] = field(
        default=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    )
    # A custom resource's definition (corral.api.crd.CustomKind): its schema,
    # printer columns and scale paths. None for the built-in kinds.
    custom: Any = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return self.api_version

    def storage_prefix(self, namespace: str | None = None) -> str:
        """Key prefix for this resource, ending in '/'. Namespaced resources list
        across namespaces with namespace=None."""
        base = f"/registry/{self.group or 'core'}/{self.plural}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def storage_key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_prefix()}{namespace}/{name}"
        return f"{self.storage_prefix()}{name}"


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "Namespace", "namespaces", False, ("ns",)),
    Resource("", "v1", "Node", "nodes", False, ("no",), ("status", "proxy")),
    Resource("", "v1", "Pod", "pods", True, ("po",),
             ("status", "binding", "eviction", "log"), ("all",)),
    Resource("", "v1", "Service", "services", True, ("svc",), ("status",), ("all",)),
    Resource("", "v1", "Endpoints", "endpoints", True, ("ep",), (), has_spec=False),
    Resource("", "v1", "Event", "events", True, ("ev",), (), has_spec=False),
    Resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, (), (),
             has_spec=False),
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",), (), has_spec=False),
    Resource("", "v1", "Secret", "secrets", True, (), (), has_spec=False),
    Resource("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",)),
    Resource("", "v1", "LimitRange", "limitranges", True, ("limits",), ()),
    Resource("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",),
             has_spec=False),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", True, (), ()),
    Resource("apps", "v1", "Deployment", "deployments", True, ("deploy",),
             ("status", "scale"), ("all",)),
    Resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",),
             ("status", "scale"), ("all",)),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), ("all",)),
    Resource("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",),
             ("status", "scale"), ("all",)),
    Resource("apps", "v1", "ControllerRevision", "controllerrevisions", True, (), (),
             has_spec=False),
    Resource("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",),
             ("status", "scale"), ("all",)),
    Resource("batch", "v1", "Job", "jobs", True, (), ("status",), ("all",)),
    Resource("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",), ("all",)),
    Resource("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",), (),
             has_spec=False),
    Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",)),
    Resource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
             ("hpa",), ("status",), ("all",)),
    Resource("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
             "customresourcedefinitions", False, ("crd", "crds"), ("status",), ("api-extensions",)),
    Resource("corral.dev", "v1", "Alloc", "allocs", True, (),
             ("status", "binding", "log"), ("all",)),
    Resource("corral.dev", "v1", "Framework", "frameworks", False, ("fw",), ("status",)),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True, (), (), has_spec=False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, (), (),
             has_spec=False),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True, (), (),
             has_spec=False),
    Resource("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
             False, (), (), has_spec=False),
    Resource("certificates.k8s.io", "v1", "CertificateSigningRequest",
             "certificatesigningrequests", False, ("csr",), ("status", "approval")),
)

# Versions served by conversion from the stored one (corral.api.conversion), as
# kube-apiserver serves autoscaling/v1 HPAs from the autoscaling/v2 it stores.
# Discovery and routing see them; storage, quota and the namespace controller
# see only the stored version in RESOURCES.
CONVERTED: tuple[Resource, ...] = (
    Resource("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True,
             ("hpa",), ("status",), ("all",)),
)

# Kinds the server computes per request instead of storing: access reviews
# (asked of the authorizer) and resource metrics (read from the agents).
# Discovery lists them; storage, OpenAPI's CRUD paths, quota and the namespace
# controller see only RESOURCES.
COMPUTED: tuple[Resource, ...] = (
    Resource("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False,
             (), (), verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
             "selfsubjectaccessreviews", False, (), (), verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
             False, (), (), verbs=("create",)),
    Resource("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, (), (),
             verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews",
             False, (), (), verbs=("create",)),
    Resource("authorization.k8s.io", "v1", "LocalSubjectAccessReview",
             "localsubjectaccessreviews", True, (), (), verbs=("create",)),
    Resource("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, (), (),
             verbs=("get", "list")),
    Resource("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, (), (),
             verbs=("get", "list")),
)
SERVED: tuple[Resource, ...] = RESOURCES + CONVERTED + COMPUTED

BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}
BY_GROUP_PLURAL: dict[tuple[str, str], Resource] = {(r.group, r.plural): r for r in RESOURCES}


def group_versions(resources: tuple[Resource, ...] = RESOURCES) -> list[tuple[str, str]]:
    """(group, version) pairs in a stable order, core first."""
    seen: list[tuple[str, str]] = []
    for r in resources:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


class ServedTable:
    """What one API server serves: the built-in table above, plus the custom
    resources its CustomResourceDefinitions define (corral.api.crd keeps those
    current from the store, so every master serves a CRD's kind at once).
    The custom set is replaced whole, never edited in place, so a reader holding
    ``all()`` sees one consistent table."""

    def __init__(self) -> None:
        self._custom: dict[str, tuple[Resource, ...]] = {}  # CRD name → its versions
        self._rebuild()

    def _rebuild(self) -> None:
        custom = tuple(r for rs in self._custom.values() for r in rs)
        self._all = RESOURCES + custom
        self._discoverable = SERVED + custom
        self._by_group_plural = {(r.group, r.plural, r.version): r
                                 for r in self._all + CONVERTED}

    def all(self) -> tuple[Resource, ...]:
        """The stored kinds: built-in and custom."""
        return self._all

    def discoverable(self) -> tuple[Resource, ...]:
        """What discovery lists: the stored kinds and the computed ones."""
        return self._discoverable

    def get(self, group: str, plural: str, version: str) -> Resource | None:
        return self._by_group_plural.get((group, plural, version))

    def group_versions(self) -> list[tuple[str, str]]:
        return group_versions(self._all)

    def of_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self._all if r.group == group and r.version == version]

    def define(self, crd_name: str, resources: tuple[Resource, ...]) -> None:
        """Serve (or re-serve) the versions of one CRD; () stops serving it."""
        if resources:
            self._custom[crd_name] = resources
        else:
            self._custom.pop(crd_name, None)
        self._rebuild()

    def custom_names(self) -> set[str]:
        return set(self._custom)


def lookup(name: str) -> Resource | None:
    """Find a resource by plural, singular, kind, or short name (case-insensitive),
    optionally qualified by group as ``plural.group`` (e.g. ``deployments.apps``)."""
    key = name.lower()
    base, _, group = key.partition(".")
    for r in RESOURCES:
        if group and r.group.lower() != group and not r.group.lower().startswith(group):
            continue
        if base in (r.plural, r.singular, r.kind.lower(), *r.short_names):
            return r
    return None
