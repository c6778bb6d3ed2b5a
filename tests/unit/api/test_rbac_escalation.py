"""The pure rules of RBAC's escalation check: break a rule down, see whether the
caller's rules cover each piece, print what is missing as Kubernetes does."""

from __future__ import annotations

from corral.api.authz import NonResourceRule, ResourceRule, Rules
from corral.api.rbac_escalation import breakdown, compact, compact_string, covered

HELD = Rules((ResourceRule(("get", "list"), ("",), ("pods", "services/*")),
              ResourceRule(("*",), ("apps",), ("*/scale",)),
              ResourceRule(("get",), ("",), ("secrets",), ("public",))),
             (NonResourceRule(("get",), ("/healthz/*",)),))


def _missing(rule: dict[str, list[str]]) -> list[str]:
    return [compact_string(r) for r in compact([p for p in breakdown(rule)
                                                if not covered(HELD, p)])]


def test_what_the_caller_holds_is_covered() -> None:
    assert _missing({"apiGroups": [""], "resources": ["pods", "services/proxy"],
                     "verbs": ["get"]}) == []
    assert _missing({"apiGroups": ["apps"], "resources": ["deployments/scale"],
                     "verbs": ["patch"]}) == []
    assert _missing({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                     "resourceNames": ["public"]}) == []
    assert _missing({"nonResourceURLs": ["/healthz/etcd"], "verbs": ["get"]}) == []


def test_what_is_missing_is_printed_compacted_and_sorted() -> None:
    assert _missing({"apiGroups": [""], "resources": ["secrets", "pods"],
                     "verbs": ["get", "delete"]}) == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete"]}']
    assert _missing({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                     "resourceNames": ["private"]}) == [
        '{APIGroups:[""], Resources:["secrets"], ResourceNames:["private"], Verbs:["get"]}']
    assert _missing({"apiGroups": ["apps"], "resources": ["deployments"],
                     "verbs": ["get"]}) == [
        '{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}']
    assert _missing({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}) == [
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}']
    # A name-limited rule never covers the whole resource.
    assert _missing({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}) == [
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}']
