"""RBAC's escalation checks: nobody hands out permissions they do not hold.

    create/update Role, ClusterRole
        caller in system:masters, or may `escalate` roles|clusterroles (that name)? ─► ok
        else every rule of the role must be covered by the caller's own rules
             (in the role's namespace; cluster-wide for a ClusterRole), and an
             aggregationRule needs escalate
    create/update RoleBinding, ClusterRoleBinding
        caller in system:masters, or may `bind` the roleRef's role (that name)?      ─► ok
        else the referenced role's rules must be covered by the caller's own

A refusal is Kubernetes' 403 (pkg/registry/rbac/validation/rule.go
ConfirmNoEscalation): 'clusterroles.rbac.authorization.k8s.io "x" is forbidden:
user "jane" (groups=["system:authenticated"]) is attempting to grant RBAC
permissions not currently held:' then each missing rule, broken down to one verb
and one resource and compacted again, as {APIGroups:[""], Resources:["secrets"],
Verbs:["get" "list"]}. Writes that only change what the garbage collector
changes (ownerReferences, finalizers) are not checked, nor the server's own
writes (no request user: the default policy).
"""

from __future__ import annotations

from collections.abc import Iterable

from corral.api.auth import User
from corral.api.authz import CURRENT_USER, Attributes, Rules
from corral.api.errors import Forbidden, NotFound
from corral.api.rbac import MASTERS, RbacAuthorizer
from corral.api.resources import Resource
from corral.objects import Obj, meta, name_of, namespace_of

GROUP = "rbac.authorization.k8s.io"
_ROLES = {"Role": "roles", "ClusterRole": "clusterroles"}
_BINDINGS = {"RoleBinding": "rolebindings", "ClusterRoleBinding": "clusterrolebindings"}
_GC_FIELDS = ("ownerReferences", "finalizers", "resourceVersion", "managedFields",
              "generation", "deletionTimestamp", "deletionGracePeriodSeconds")


class EscalationCheck:
    """An admission plugin over the four RBAC kinds."""

    def __init__(self, authorizer: RbacAuthorizer) -> None:
        self.authorizer = authorizer

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        user = CURRENT_USER.get()
        if res.group != GROUP or user is None or MASTERS in user.groups:
            return
        if old is not None and _only_gc_fields_changed(obj, old):
            return
        if res.kind in _ROLES:
            self._check_role(user, res, obj)
        elif res.kind in _BINDINGS:
            self._check_binding(user, res, obj)

    def _may(self, user: User, verb: str, resource: str, namespace: str, name: str) -> bool:
        attrs = Attributes(user, verb, True, "", GROUP, "v1", namespace, resource, "", name)
        return self.authorizer.authorize(attrs)[0]

    def _check_role(self, user: User, res: Resource, obj: Obj) -> None:
        namespace, name = namespace_of(obj), name_of(obj)
        if self._may(user, "escalate", _ROLES[res.kind], namespace, name):
            return
        if obj.get("aggregationRule"):
            raise Forbidden(f'{res.plural}.{GROUP} "{name}" is forbidden: must have '
                            "cluster-admin privileges to use the aggregationRule",
                            kind=res.plural, name=name, group=GROUP)
        self._confirm_no_escalation(user, res, name, namespace, obj.get("rules") or [])

    def _check_binding(self, user: User, res: Resource, obj: Obj) -> None:
        namespace, name = namespace_of(obj), name_of(obj)
        ref = obj.get("roleRef") or {}
        kind, role = str(ref.get("kind") or ""), str(ref.get("name") or "")
        if self._may(user, "bind", _ROLES.get(kind, ""), namespace, role):
            return
        if kind == "ClusterRole":
            rules = self.authorizer.cluster_role_rules(role)
            exists = role in self.authorizer.state.cluster_roles
        else:
            found = self.authorizer.state.roles.get((namespace, role))
            rules, exists = list((found or {}).get("rules") or []), found is not None
        if not exists:  # as kube-apiserver: the rules cannot be had
            raise NotFound(f'{_ROLES.get(kind, kind)}.{GROUP} "{role}" not found',
                           kind=_ROLES.get(kind, kind), name=role, group=GROUP)
        self._confirm_no_escalation(user, res, name, namespace, rules)

    def _confirm_no_escalation(self, user: User, res: Resource, name: str, namespace: str,
                               rules: list[Obj]) -> None:
        held = self.authorizer.rules_for(user, namespace)
        missing = [r for rule in rules for r in breakdown(rule) if not covered(held, r)]
        if not missing:
            return
        lines = "\n".join(compact_string(r) for r in compact(missing))
        groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
        raise Forbidden(f'{res.plural}.{GROUP} "{name}" is forbidden: user "{user.name}" '
                        f"(groups={groups}) is attempting to grant RBAC permissions not "
                        f"currently held:\n{lines}", kind=res.plural, name=name, group=GROUP)


def _only_gc_fields_changed(new: Obj, old: Obj) -> bool:
    def strip(obj: Obj) -> Obj:
        m = {k: v for k, v in meta(obj).items() if k not in _GC_FIELDS}
        return {**obj, "metadata": m}
    return strip(new) == strip(old)


def breakdown(rule: Obj) -> list[Obj]:
    """One rule per verb and resource (and name, URL), as Kubernetes' BreakdownRule."""
    verbs = list(rule.get("verbs") or [])
    out: list[Obj] = []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for verb in verbs:
                names = rule.get("resourceNames") or []
                for name in names or [None]:
                    one: Obj = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                    if name is not None:
                        one["resourceNames"] = [name]
                    out.append(one)
    for url in rule.get("nonResourceURLs") or []:
        out.extend({"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs)
    return out


def covered(held: Rules, one: Obj) -> bool:
    verb = one["verbs"][0]
    if "nonResourceURLs" in one:
        url = one["nonResourceURLs"][0]
        return any(_has(r.verbs, verb) and any(_url_covers(u, url) for u in r.urls)
                   for r in held.non_resource)
    group, resource = one["apiGroups"][0], one["resources"][0]
    names = one.get("resourceNames") or []
    return any(_has(r.verbs, verb) and _has(r.api_groups, group)
               and any(_resource_covers(h, resource) for h in r.resources)
               and (not r.resource_names or (names and names[0] in r.resource_names))
               for r in held.resource)


def _has(values: Iterable[str], value: str) -> bool:
    return "*" in values or value in values


def _resource_covers(owner: str, wanted: str) -> bool:
    if owner in ("*", wanted):
        return True
    if owner == "*/*":
        return True
    if owner.endswith("/*") and wanted.startswith(owner[:-1]):
        return True
    return owner.startswith("*/") and "/" in wanted and wanted.split("/", 1)[1] == owner[2:]


def _url_covers(owner: str, wanted: str) -> bool:
    return owner in ("*", wanted) or (owner.endswith("*") and wanted.startswith(owner[:-1]))


def compact(rules: list[Obj]) -> list[Obj]:
    """Simple rules of one group and resource merged into one with all their
    verbs (Kubernetes' CompactRules), sorted by their printed form."""
    merged: dict[tuple[str, str], Obj] = {}
    out: list[Obj] = []
    for rule in rules:
        if "nonResourceURLs" in rule or rule.get("resourceNames"):
            out.append(rule)
            continue
        key = (rule["apiGroups"][0], rule["resources"][0])
        if key in merged:
            merged[key]["verbs"] = [*merged[key]["verbs"], *(
                v for v in rule["verbs"] if v not in merged[key]["verbs"])]
        else:
            merged[key] = {**rule, "verbs": list(rule["verbs"])}
            out.append(merged[key])
    return sorted(out, key=compact_string)


def compact_string(rule: Obj) -> str:
    """PolicyRule.CompactString: {APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}."""
    parts = []
    for field, label in (("apiGroups", "APIGroups"), ("resources", "Resources"),
                         ("nonResourceURLs", "NonResourceURLs"),
                         ("resourceNames", "ResourceNames"), ("verbs", "Verbs")):
        values = rule.get(field) or []
        if values:
            parts.append(f"{label}:[" + " ".join(f'"{v}"' for v in values) + "]")
    return "{" + ", ".join(parts) + "}"
