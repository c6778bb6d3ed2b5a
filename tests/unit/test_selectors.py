"""Label and field selectors: parsing, matching, printing."""

from __future__ import annotations

from typing import Any

import pytest

from corral.api.selectors import (
    EVERYTHING,
    NOTHING,
    FieldOperator,
    FieldRequirement,
    Operator,
    Requirement,
    from_label_selector_object,
    parse_field_selector,
    parse_label_selector,
    selectable_fields,
)

LABELS = {"app": "web", "tier": "front", "env": "prod", "n": "5", "empty": ""}

# (selector, matches LABELS)
LABEL_MATCHES = [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),
    ("app in (web,db)", True),
    ("app in (db)", False),
    ("missing in (x)", False),
    ("app notin (db,cache)", True),
    ("app notin (web)", False),
    ("missing notin (x)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("  app = web ,  tier  in(front , back) ,!missing  ", True),
    ("empty=", True),
    ("empty", True),
    ("empty in (,x)", True),
    ("n>4", True),
    ("n>5", False),
    ("n<6", True),
    ("app>1", False),
    ("missing<9", False),
    ("example.com/role!=x", True),
]


@pytest.mark.parametrize(("text", "expected"), LABEL_MATCHES)
def test_label_selector_matching(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


# (selector, a fragment the error must name)
BAD_LABEL_SELECTORS = [
    ("app=web,", "','"),
    (",app", "','"),
    ("app web", "'web'"),
    ("app in web", "'('"),
    ("app in (web", "end of input"),
    ("app in (web db)", "'db'"),
    ("=web", "'='"),
    ("!", "end of input"),
    ("!=x", "'!='"),
    ("app=web=x", "'='"),
    ("-bad=x", "'-bad'"),
    ("app=bad value", "'value'"),
    ("app=-x", "'-x'"),
    ("Upper.Case/a=b", "'Upper.Case/a'"),
    ("a" * 64 + "=b", "a" * 64),
    ("n>x", "'x'"),
    ("app)", "')'"),
]


@pytest.mark.parametrize(("text", "named"), BAD_LABEL_SELECTORS)
def test_invalid_label_selectors_name_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_label_selector(text)
    assert named in str(caught.value)


def test_requirements_are_exposed_sorted_by_key() -> None:
    selector = parse_label_selector("tier in (b,a),app==web,!gone,x!=y")
    assert selector.requirements == (
        Requirement("app", Operator.EQUALS, ("web",)),
        Requirement("gone", Operator.DOES_NOT_EXIST),
        Requirement("tier", Operator.IN, ("a", "b")),
        Requirement("x", Operator.NOT_EQUALS, ("y",)),
    )


def test_exact_labels_for_an_index() -> None:
    selector = parse_label_selector("app=web,tier in (front),env in (a,b),x!=y,z")
    assert selector.exact_labels() == {"app": "web", "tier": "front"}


@pytest.mark.parametrize(("text", "printed"), [
    ("", ""),
    ("app=web", "app=web"),
    ("b=2,a=1", "a=1,b=2"),
    ("app==web", "app=web"),
    ("env notin ( z , a )", "env notin (a,z)"),
    ("x, !y", "x,!y"),
    ("n>3,m<2", "m<2,n>3"),
])
def test_to_string_round_trips(text: str, printed: str) -> None:
    selector = parse_label_selector(text)
    assert selector.to_string() == printed
    assert parse_label_selector(printed) == selector


def test_empty_and_nothing_selectors() -> None:
    assert EVERYTHING.matches({}) and EVERYTHING.everything
    assert parse_label_selector("").everything
    assert not NOTHING.matches({}) and not NOTHING.matches(LABELS)
    assert not NOTHING.everything


# --- metav1.LabelSelector objects --------------------------------------------------------


def test_none_selects_nothing_and_empty_selects_everything() -> None:
    """As metav1.LabelSelectorAsSelector: nil → Nothing, {} → Everything."""
    assert from_label_selector_object(None) is NOTHING
    assert from_label_selector_object({}).everything
    assert from_label_selector_object({"matchLabels": {}, "matchExpressions": []}).matches({})


def test_selector_object_with_labels_and_expressions() -> None:
    selector = from_label_selector_object({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "n", "operator": "Exists"},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    })
    assert selector.matches(LABELS)
    assert not selector.matches({**LABELS, "canary": "1"})
    assert not selector.matches({**LABELS, "tier": "middle"})
    assert selector.to_string() == "app=web,!canary,env notin (dev),n,tier in (back,front)"


def test_scale_status_selector_string() -> None:
    assert from_label_selector_object({"matchLabels": {"app": "web", "a": "b"}}).to_string() \
        == "a=b,app=web"


@pytest.mark.parametrize("obj", [
    {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
    {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
    {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
    {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
    {"matchExpressions": ["a=b"]},
    {"matchLabels": {"bad key": "x"}},
    {"matchLabels": {"a": "bad value"}},
    "app=web",
])
def test_invalid_selector_objects(obj: Any) -> None:
    with pytest.raises(ValueError):
        from_label_selector_object(obj)


# --- field selectors -----------------------------------------------------------------------

POD = {
    "kind": "Pod",
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostNetwork": False},
    "status": {"phase": "Running"},
}
NODE = {"kind": "Node", "metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
EVENT = {
    "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u1"},
    "reason": "Scheduled", "type": "Normal", "source": {"component": "scheduler"},
}

FIELD_MATCHES = [
    ("", POD, True),
    ("metadata.name=web-1", POD, True),
    ("metadata.name==web-1", POD, True),
    ("metadata.name=web-2", POD, False),
    ("metadata.name!=web-2", POD, True),
    ("metadata.namespace=default,spec.nodeName=n1", POD, True),
    ("metadata.namespace=default,spec.nodeName=n2", POD, False),
    ("spec.nodeName=", {**POD, "spec": {}}, True),  # unbound pods: a missing field is ""
    ("spec.nodeName!=", POD, True),
    ("status.phase!=Succeeded,status.phase!=Failed", POD, True),
    ("spec.hostNetwork=false", POD, True),
    ("spec.unschedulable=true", NODE, True),
    ("spec.unschedulable=false", NODE, False),
    # absent Go value fields read as their zero value, as in Kubernetes' field sets
    ("spec.unschedulable=false", {**NODE, "spec": {}}, True),
    ("spec.unschedulable!=true", {**NODE, "spec": {}}, True),
    ("spec.hostNetwork=false", {**POD, "spec": {"nodeName": "n1"}}, True),
    ("status.successful=0", {"kind": "Job", "status": {}}, True),
    ("status.replicas=0", {"kind": "ReplicaSet"}, True),
    ("involvedObject.kind=Pod,involvedObject.name=web-1", EVENT, True),
    ("involvedObject.uid=u2", EVENT, False),
    ("source=scheduler", EVENT, True),
    ("reason=Scheduled,type=Normal", EVENT, True),
    (" metadata.name = web-1 ", POD, True),
]


@pytest.mark.parametrize(("text", "obj", "expected"), FIELD_MATCHES)
def test_field_selector_matching(text: str, obj: dict[str, Any], expected: bool) -> None:
    assert parse_field_selector(text).matches(obj) is expected


def test_job_status_successful_aliases_status_succeeded() -> None:
    job = {"kind": "Job", "status": {"succeeded": 3}}
    assert parse_field_selector("status.successful=3").matches(job)


def test_escaped_values() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d,status.phase=x")
    assert selector.requirements == (
        FieldRequirement("metadata.name", FieldOperator.EQUALS, "a,b=c\\d"),
        FieldRequirement("status.phase", FieldOperator.EQUALS, "x"),
    )
    assert parse_field_selector(selector.to_string()) == selector


@pytest.mark.parametrize(("text", "named"), [
    ("metadata.name", "metadata.name"),
    ("=x", "empty"),
    ("metadata.name=a\\x", "\\x"),
    ("metadata.name=a\\", "escape"),
    ("spec.nodeName~n1", "spec.nodeName~n1"),
])
def test_invalid_field_selectors(text: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_field_selector(text)
    assert named in str(caught.value)


@pytest.mark.parametrize(("kind", "text", "supported"), [
    ("Pod", "metadata.name=a,metadata.namespace=b", True),
    ("Pod", "spec.nodeName=n1,status.phase=Running", True),
    ("Pod", "spec.containers=x", False),
    ("Node", "spec.unschedulable=false", True),
    ("Node", "metadata.name=n1", True),
    ("Node", "metadata.namespace=x", False),  # cluster-scoped
    ("Node", "spec.nodeName=n1", False),
    ("Event", "involvedObject.name=web,source=kubelet", True),
    ("Deployment", "metadata.name=web", True),
    ("Deployment", "status.replicas=1", False),
    ("ReplicaSet", "status.replicas=1", True),
    ("Secret", "type=Opaque", True),
    ("ConfigMap", "data.x=y", False),
])
def test_field_labels_allowed_per_kind(kind: str, text: str, supported: bool) -> None:
    selector = parse_field_selector(text)
    assert selector.supported(kind) is supported
    assert (selector.unsupported(kind) == []) is supported


def test_unsupported_names_the_fields() -> None:
    assert parse_field_selector("metadata.name=a,spec.bogus=1").unsupported("Pod") == [
        "spec.bogus"]
    assert "spec.nodeName" in selectable_fields("Pod")


def test_exact_value_for_a_named_watch() -> None:
    selector = parse_field_selector("metadata.name!=x,metadata.name=web,status.phase=Running")
    assert selector.exact_value("metadata.name") == "web"
    assert selector.exact_value("spec.nodeName") is None
    assert parse_field_selector("metadata.name!=web").exact_value("metadata.name") is None
    assert parse_field_selector("").everything
