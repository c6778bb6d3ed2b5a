"""Validation of the RBAC kinds, as kube-apiserver's (pkg/apis/rbac/validation).

A rule names verbs and either resources (with their API groups) or non-resource
URLs, never both; only a ClusterRole may name URLs. A binding's roleRef names a
Role or ClusterRole of rbac.authorization.k8s.io and cannot change; its subjects
are Users, Groups or ServiceAccounts.
"""

from __future__ import annotations

from corral.api.field_errors import FieldErrors
from corral.api.kinds.rbac import (
    ClusterRole,
    ClusterRoleBinding,
    PolicyRule,
    Role,
    RoleBinding,
    Subject,
)

RBAC_GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


def validate_role(role: Role, old: Role | None, errs: FieldErrors) -> None:
    _rules(role.rules or [], errs, namespaced=True)


def validate_cluster_role(role: ClusterRole, old: ClusterRole | None,
                          errs: FieldErrors) -> None:
    _rules(role.rules or [], errs, namespaced=False)
    if role.aggregation_rule is not None and not role.aggregation_rule.cluster_role_selectors:
        errs.required("aggregationRule.clusterRoleSelectors",
                      "at least one clusterRoleSelector required if aggregationRule is non-nil")


def validate_role_binding(binding: RoleBinding, old: RoleBinding | None,
                          errs: FieldErrors) -> None:
    _binding(binding, old, errs, ("Role", "ClusterRole"), namespaced=True)


def validate_cluster_role_binding(binding: ClusterRoleBinding, old: ClusterRoleBinding | None,
                                  errs: FieldErrors) -> None:
    _binding(binding, old, errs, ("ClusterRole",), namespaced=False)


def _rules(rules: list[PolicyRule], errs: FieldErrors, *, namespaced: bool) -> None:
    for i, rule in enumerate(rules):
        path = f"rules[{i}]"
        if not rule.verbs:
            errs.required(f"{path}.verbs", "verbs must contain at least one value")
        if rule.non_resource_urls:
            if namespaced:
                errs.invalid(f"{path}.nonResourceURLs", rule.non_resource_urls,
                             "namespaced rules cannot apply to non-resource URLs")
            if rule.api_groups or rule.resources:
                errs.invalid(f"{path}.nonResourceURLs", rule.non_resource_urls,
                             "rules cannot apply to both regular resources and "
                             "non-resource URLs")
            continue
        if not rule.api_groups:
            errs.required(f"{path}.apiGroups",
                          "resource rules must supply at least one api group")
        if not rule.resources:
            errs.required(f"{path}.resources",
                          "resource rules must supply at least one resource")


def _binding(binding: RoleBinding | ClusterRoleBinding,
             old: RoleBinding | ClusterRoleBinding | None, errs: FieldErrors,
             ref_kinds: tuple[str, ...], *, namespaced: bool) -> None:
    ref = binding.role_ref
    errs.one_of("roleRef.apiGroup", ref.api_group, (RBAC_GROUP,))
    errs.one_of("roleRef.kind", ref.kind, ref_kinds)
    if not ref.name:
        errs.required("roleRef.name")
    if old is not None and ref.model_dump() != old.role_ref.model_dump():
        errs.invalid("roleRef", ref.model_dump(by_alias=True), "cannot change roleRef")
    for i, subject in enumerate(binding.subjects or []):
        _subject(subject, f"subjects[{i}]", errs, namespaced=namespaced)


def _subject(subject: Subject, path: str, errs: FieldErrors, *, namespaced: bool) -> None:
    if not subject.name:
        errs.required(f"{path}.name")
    if subject.kind not in SUBJECT_KINDS:
        errs.not_supported(f"{path}.kind", subject.kind, SUBJECT_KINDS)
        return
    if subject.kind == "ServiceAccount":
        if subject.api_group:
            errs.not_supported(f"{path}.apiGroup", subject.api_group, ("",))
        if not namespaced and not subject.namespace:
            errs.required(f"{path}.namespace")
    elif subject.api_group not in (None, "", RBAC_GROUP):  # empty: defaulted by Kubernetes
        errs.not_supported(f"{path}.apiGroup", subject.api_group, (RBAC_GROUP,))
