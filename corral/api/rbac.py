"""The RBAC authorizer: Roles and ClusterRoles say what, bindings say who.

    attributes ─► ClusterRoleBindings naming the user (or a group of theirs)
               │    └► their ClusterRole's rules  ─ one allows? ─► allowed
               └► RoleBindings of the request's namespace naming the user
                    └► their Role's or ClusterRole's rules ─ one allows? ─► allowed
               otherwise denied (the 403 names user, verb, resource, namespace)

Kubernetes' rule matching (plugin/pkg/auth/authorizer/rbac): verbs, apiGroups
and resources match exactly or by "*"; a subresource is "pods/log" (or
"*/log"), never matched by plain "pods"; resourceNames limit a rule to those
names (so never to a list or a create without a name); nonResourceURLs match
exactly or by a trailing "*". A ClusterRole with an aggregationRule holds the
rules of every ClusterRole its selectors match (admin, edit, view), computed
here when asked rather than written back by a controller.

The objects are kept in memory by RbacCache (corral/api/rbac_cache.py), fed by
watches on the store, so deciding costs no store read; a change takes effect
once its watch event arrives, as with kube-apiserver's informers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from corral.api.auth import User
from corral.api.authz import Attributes, NonResourceRule, ResourceRule, Rules
from corral.api.selectors import from_label_selector_object
from corral.objects import Obj, meta

MASTERS = "system:masters"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass
class RbacState:
    """The RBAC objects, by (namespace, name) for the namespaced kinds. Whoever
    changes them counts ``generation`` up (what was derived from them is stale)."""

    roles: dict[tuple[str, str], Obj] = field(default_factory=dict)
    cluster_roles: dict[str, Obj] = field(default_factory=dict)
    role_bindings: dict[tuple[str, str], Obj] = field(default_factory=dict)
    cluster_role_bindings: dict[str, Obj] = field(default_factory=dict)
    generation: int = 0


Grants = list[tuple[str, list[Obj]]]
_GRANTS_KEPT = 4096  # (user, groups, namespace) combinations remembered


class RbacAuthorizer:
    """Decides from an RbacState, which its owner keeps current."""

    def __init__(self, state: RbacState | None = None) -> None:
        self.state = state or RbacState()
        # What the bindings grant each (user, groups, namespace), while the state's
        # generation is the one they were found at: every request asks, and
        # finding them walks every ClusterRoleBinding's subjects.
        self._grants_of: dict[tuple[str, tuple[str, ...], str], Grants] = {}
        self._grants_at: tuple[int, int] = (-1, -1)  # id(state), its generation

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        if MASTERS in attrs.user.groups:
            return True, f"RBAC: allowed by the group {MASTERS}"
        for where, rules in self._cached_grants(attrs.user, attrs.namespace):
            if any(rule_allows(rule, attrs) for rule in rules):
                return True, f"RBAC: allowed by {where}"
        return False, ""

    def _cached_grants(self, user: User, namespace: str) -> Grants:
        at = (id(self.state), self.state.generation)
        if at != self._grants_at or len(self._grants_of) >= _GRANTS_KEPT:
            self._grants_of.clear()
            self._grants_at = at
        key = (user.name, user.groups, namespace)
        grants = self._grants_of.get(key)
        if grants is None:
            grants = self._grants_of[key] = list(self._grants(user, namespace))
        return grants

    def rules_for(self, user: User, namespace: str) -> Rules:
        if MASTERS in user.groups:
            return Rules((ResourceRule(("*",)),), (NonResourceRule(("*",), ("*",)),))
        resource: list[ResourceRule] = []
        non_resource: list[NonResourceRule] = []
        for _, rules in self._cached_grants(user, namespace):
            for rule in rules:
                verbs = tuple(rule.get("verbs") or ())
                if rule.get("nonResourceURLs"):
                    non_resource.append(NonResourceRule(verbs, tuple(rule["nonResourceURLs"])))
                else:
                    resource.append(ResourceRule(verbs, tuple(rule.get("apiGroups") or ()),
                                                 tuple(rule.get("resources") or ()),
                                                 tuple(rule.get("resourceNames") or ())))
        return Rules(tuple(dict.fromkeys(resource)), tuple(dict.fromkeys(non_resource)))

    def _grants(self, user: User, namespace: str) -> Iterator[tuple[str, list[Obj]]]:
        """(which binding, the rules it grants) for every binding naming the user."""
        state = self.state
        for name, binding in state.cluster_role_bindings.items():
            if _names_user(binding, user, ""):
                role = binding.get("roleRef", {}).get("name", "")
                where = f'ClusterRoleBinding "{name}" of ClusterRole "{role}" to {_who(user)}'
                yield where, self.cluster_role_rules(role)
        if not namespace:
            return
        for (ns, name), binding in state.role_bindings.items():
            if ns != namespace or not _names_user(binding, user, ns):
                continue
            ref = binding.get("roleRef", {})
            kind, role = ref.get("kind", ""), ref.get("name", "")
            rules = (self.cluster_role_rules(role) if kind == "ClusterRole"
                     else list(state.roles.get((ns, role), {}).get("rules") or []))
            yield (f'RoleBinding "{name}/{ns}" of {kind} "{role}" to {_who(user)}', rules)

    def cluster_role_rules(self, name: str) -> list[Obj]:
        role = self.state.cluster_roles.get(name)
        if role is None:
            return []
        rules = list(role.get("rules") or [])
        aggregation = role.get("aggregationRule")
        if not aggregation:
            return rules
        selectors = [from_label_selector_object(s)
                     for s in aggregation.get("clusterRoleSelectors") or []]
        for other_name, other in self.state.cluster_roles.items():
            labels = meta(other).get("labels") or {}
            if other_name != name and any(s.matches(labels) for s in selectors):
                rules.extend(other.get("rules") or [])
        return rules


def _who(user: User) -> str:
    return f'User "{user.name}"'


def _names_user(binding: Obj, user: User, namespace: str) -> bool:
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User" and name == user.name:
            return True
        if kind == "Group" and name in user.groups:
            return True
        if kind == "ServiceAccount":
            ns = subject.get("namespace") or namespace
            if user.name == f"{SERVICE_ACCOUNT_PREFIX}{ns}:{name}":
                return True
    return False


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return any(_url_matches(url, attrs.path) for url in rule.get("nonResourceURLs") or [])
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.api_group not in groups:
        return False
    if not any(_resource_matches(r, attrs.resource, attrs.subresource)
               for r in rule.get("resources") or []):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _resource_matches(rule_resource: str, resource: str, subresource: str) -> bool:
    if rule_resource == "*":
        return True
    combined = f"{resource}/{subresource}" if subresource else resource
    if rule_resource == combined:
        return True
    return bool(subresource) and rule_resource == f"*/{subresource}"


def _url_matches(rule_url: str, path: str) -> bool:
    if rule_url == "*" or rule_url == path:
        return True
    return rule_url.endswith("*") and path.startswith(rule_url[:-1])
