"""LimitRange's pure parts: the LimitRanger plugin's bounds and defaults in
Kubernetes' words, and the validation rules the integration tests do not reach."""

from __future__ import annotations

from decimal import Decimal

import pytest

from corral.api.admission.limit_ranger import aggregate, check_bounds, check_pod, default_pod
from corral.api.errors import Invalid
from corral.api.registry.prepare import prepare
from corral.api.resources import BY_KIND
from corral.objects import Obj


def amounts(**values: str) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in values.items()}


@pytest.mark.parametrize(("item", "requests", "limits", "expected"), [
    ({"min": {"cpu": "100m"}}, {}, {}, ("minimum cpu usage per Container is 100m.  No request "
                                       "is specified")),
    ({"min": {"cpu": "100m"}}, amounts(cpu="0.2"), amounts(cpu="0.05"),
     "minimum cpu usage per Container is 100m, but limit is 50m"),
    ({"max": {"memory": "1Gi"}}, {}, {}, ("maximum memory usage per Container is 1Gi.  No limit "
                                         "is specified")),
    ({"max": {"cpu": "1"}}, amounts(cpu="2"), amounts(cpu="1"),
     "maximum cpu usage per Container is 1, but request is 2"),
    ({"maxLimitRequestRatio": {"cpu": "2"}}, amounts(cpu="0.1"), amounts(cpu="0.5"),
     "cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000"),
    ({"maxLimitRequestRatio": {"cpu": "2"}}, amounts(cpu="0"), amounts(cpu="1"),
     ("cpu max limit to request ratio per Container is 2, but no request is specified or "
     "request is 0")),
    ({"maxLimitRequestRatio": {"cpu": "2"}}, amounts(cpu="1"), {},
     ("cpu max limit to request ratio per Container is 2, but no limit is specified or "
     "limit is 0")),
])
def test_bounds_in_kubernetes_words(item: Obj, requests: dict[str, Decimal],
                                    limits: dict[str, Decimal], expected: str) -> None:
    assert check_bounds(item, "Container", requests, limits) == [expected]


def test_bounds_met_say_nothing() -> None:
    item = {"min": {"cpu": "100m"}, "max": {"cpu": "1"}, "maxLimitRequestRatio": {"cpu": "2"}}
    assert check_bounds(item, "Container", amounts(cpu="0.5"), amounts(cpu="1")) == []


def test_aggregate_is_kubernetes_error_aggregate() -> None:
    assert aggregate(["a"]) == "a"
    assert aggregate(["a", "b", "a"]) == "[a, b]"


def _resources(cpu: str) -> Obj:
    return {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}


def test_pod_sum_counts_sidecars_and_the_init_peak_not_overhead() -> None:
    pod = {"spec": {
        "containers": [{"name": "app", "resources": _resources("400m")}],
        "initContainers": [{"name": "proxy", "restartPolicy": "Always",
                            "resources": _resources("300m")},
                           {"name": "setup", "resources": _resources("800m")}],
        "overhead": {"cpu": "1"}}}
    # sidecar 300m + setup 800m = 1100m while setup runs; 700m after.
    assert check_pod(pod, [{"type": "Pod", "max": {"cpu": "1"}}]) == [
        "maximum cpu usage per Pod is 1, but limit is 1100m"]
    assert check_pod(pod, [{"type": "Pod", "max": {"cpu": "1100m"}}]) == []


def test_first_container_item_naming_a_resource_wins() -> None:
    pod: Obj = {"metadata": {}, "spec": {"containers": [{"name": "app"}]}}
    items = [{"type": "Container", "defaultRequest": {"cpu": "100m"}},
             {"type": "Container", "defaultRequest": {"cpu": "300m", "memory": "1Gi"}},
             {"type": "Pod", "max": {"cpu": "1"}}]
    assert default_pod(pod, items)
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "1Gi"}}
    assert not default_pod(pod, items)  # nothing left to fill


def _create(*limits: Obj) -> Obj:
    body = {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": "lr", "namespace": "default"}, "spec": {"limits": list(limits)}}
    return prepare(BY_KIND["LimitRange"], body, old=None).obj


def _causes(*limits: Obj) -> list[tuple[str, str]]:
    with pytest.raises(Invalid) as err:
        _create(*limits)
    return [(c.field, c.message) for c in err.value.causes]


def test_container_defaults_come_from_max_and_min() -> None:
    created = _create({"type": "Container", "max": {"memory": "1Gi"}, "min": {"cpu": "100m"}})
    item = created["spec"]["limits"][0]
    assert item["default"] == {"memory": "1Gi"}
    assert item["defaultRequest"] == {"memory": "1Gi", "cpu": "100m"}


def test_ratio_wider_than_max_over_min() -> None:
    assert _causes({"type": "Pod", "min": {"cpu": "100m"}, "max": {"cpu": "1"},
                    "maxLimitRequestRatio": {"cpu": "20"}}) == [
        ("spec.limits[0].maxLimitRequestRatio[cpu]",
         'Invalid value: "20": ratio 20 is greater than max/min = 10.000000')]


def test_claims_need_a_storage_bound_and_resource_names_are_checked() -> None:
    assert _causes({"type": "PersistentVolumeClaim", "max": {"memory": "1Gi"}},
                   {"type": "Container", "max": {"gpus": "1"}}) == [
        ("spec.limits[0].limits", ("Required value: either minimum or maximum storage value "
                                  "is required, but neither was provided")),
        ("spec.limits[1].max[gpus]", ('Invalid value: "gpus": must be a standard resource '
                                     "for containers")),
        ("spec.limits[1].default[gpus]", ('Invalid value: "gpus": must be a standard resource '
                                         "for containers")),
        ("spec.limits[1].defaultRequest[gpus]", ('Invalid value: "gpus": must be a standard '
                                                "resource for containers")),
    ]


def test_extended_resources_default_equal_to_their_request() -> None:
    assert _causes({"type": "Container", "default": {"example.com/gpu": "2"},
                    "defaultRequest": {"example.com/gpu": "1"}}) == [
        ("spec.limits[0].defaultRequest[example.com/gpu]",
         ('Invalid value: "1": default value 2 must equal to defaultRequest value 1 in '
         "example.com/gpu"))]
