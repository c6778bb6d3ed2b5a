"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

Who may do what (corral/api/rbac.py enforces them). The fields sit at the top
level as in Kubernetes; there is no spec or status.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import KubeModel
from corral.api.kinds.meta import KubeObject, LabelSelector

RBAC_API = "rbac.authorization.k8s.io/v1"


class PolicyRule(KubeModel):
    verbs: list[str] = Field(default_factory=list)
    api_groups: list[str] | None = None
    resources: list[str] | None = None
    resource_names: list[str] | None = None
    non_resource_urls: list[str] | None = Field(default=None, alias="nonResourceURLs")


class AggregationRule(KubeModel):
    cluster_role_selectors: list[LabelSelector] | None = None


class RoleRef(KubeModel):
    api_group: str = ""
    kind: str = ""
    name: str = ""


class Subject(KubeModel):
    kind: str = ""
    name: str = ""
    api_group: str | None = None
    namespace: str | None = None


class Role(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = (RBAC_API,)
    rules: list[PolicyRule] | None = None


class ClusterRole(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = (RBAC_API,)
    rules: list[PolicyRule] | None = None
    aggregation_rule: AggregationRule | None = None


class RoleBinding(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = (RBAC_API,)
    role_ref: RoleRef = Field(default_factory=RoleRef)
    subjects: list[Subject] | None = None


class ClusterRoleBinding(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = (RBAC_API,)
    role_ref: RoleRef = Field(default_factory=RoleRef)
    subjects: list[Subject] | None = None
