"""The resources the API server serves: group, version, kind, plural, scope.

This table is the one place that says which kinds exist; discovery, OpenAPI,
routing, tables and storage keys all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    Resource("", "v1", "ConfigMap", "configmaps", True, ("cm",), (), has_spec=False),
    Resource("", "v1", "Secret", "secrets", True, (), (), has_spec=False),
    Resource("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",)),
    Resource("coordination.k8s.io", "v1", "Lease", "leases", True, (), ()),
    Resource("apps", "v1", "Deployment", "deployments", True, ("deploy",),
             ("status", "scale"), ("all",)),
    Resource("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",),
             ("status", "scale"), ("all",)),
    Resource("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), ("all",)),
    Resource("", "v1", "ReplicationController", "replicationcontrollers", True, ("rc",),
             ("status", "scale"), ("all",)),
    Resource("batch", "v1", "Job", "jobs", True, (), ("status",), ("all",)),
    Resource("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",), ("all",)),
    Resource("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",), (),
             has_spec=False),
    Resource("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",)),
    Resource("corral.dev", "v1", "Alloc", "allocs", True, (),
             ("status", "binding", "log"), ("all",)),
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
    Resource("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, (), (),
             verbs=("get", "list")),
    Resource("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, (), (),
             verbs=("get", "list")),
)
SERVED: tuple[Resource, ...] = RESOURCES + COMPUTED

BY_KIND: dict[str, Resource] = {r.kind: r for r in RESOURCES}
BY_GROUP_PLURAL: dict[tuple[str, str], Resource] = {(r.group, r.plural): r for r in RESOURCES}


def group_versions(resources: tuple[Resource, ...] = RESOURCES) -> list[tuple[str, str]]:
    """(group, version) pairs in a stable order, core first."""
    seen: list[tuple[str, str]] = []
    for r in resources:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


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
