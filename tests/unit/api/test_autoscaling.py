"""HorizontalPodAutoscaler in the API: kubectl autoscale's protobuf bodies,
autoscaling/v1 ⇄ v2 conversion, defaults, validation and the `kubectl get` row."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from corral.api import kinds
from corral.api.conversion import hpa_v1_to_v2, hpa_v2_to_v1
from corral.api.defaults import apply_defaults
from corral.api.errors import BadRequest
from corral.api.protobuf import decode_protobuf
from corral.api.tables.autoscaling import format_metrics, hpa_cells
from corral.api.validation import validate

# `kubectl autoscale deploy web --min=2 --max=5 --cpu-percent=50`, as kubectl 1.32
# POSTed it to /apis/autoscaling/v1 (1.33 sends the v2 body below first).
KUBECTL_132_V1 = bytes.fromhex(
    "6b3873000a290a0e6175746f7363616c696e672f76311217486f72697a6f6e74616c506f644175746f7363616c"
    "6572123f0a130a0377656212001a0022002a0032003800420012220a1a0a0a4465706c6f796d656e7412037765"
    "621a07617070732f76311002180520321a04180020001a002200")
KUBECTL_133_V2 = bytes.fromhex(
    "6b3873000a290a0e6175746f7363616c696e672f76321217486f72697a6f6e74616c506f644175746f7363616c"
    "657212610a130a0377656212001a0022002a0032003800420012440a1a0a0a4465706c6f796d656e7412037765"
    "621a07617070732f76311002180522220a085265736f7572636522160a03637075120f0a0b5574696c697a6174"
    "696f6e20321a04180020001a002200")
REF = {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}
CPU_50 = {"type": "Resource", "resource": {"name": "cpu", "target": {
    "type": "Utilization", "averageUtilization": 50}}}


def test_kubectl_autoscale_bodies() -> None:
    assert decode_protobuf(KUBECTL_132_V1) == {
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": REF, "minReplicas": 2, "maxReplicas": 5,
                 "targetCPUUtilizationPercentage": 50}}
    assert decode_protobuf(KUBECTL_133_V2) == {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": REF, "minReplicas": 2, "maxReplicas": 5,
                 "metrics": [CPU_50]}}


def test_v1_becomes_the_stored_v2() -> None:
    v2 = hpa_v1_to_v2(decode_protobuf(KUBECTL_132_V1))
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"] == {"scaleTargetRef": REF, "minReplicas": 2, "maxReplicas": 5,
                          "metrics": [CPU_50]}


def test_what_v1_cannot_say_travels_in_annotations() -> None:
    memory = {"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "AverageValue", "averageValue": "100Mi"}}}
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 10}}
    stored = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "annotations": {"team": "a"}},
        "spec": {"scaleTargetRef": REF, "maxReplicas": 4, "metrics": [memory, CPU_50],
                 "behavior": behavior},
        "status": {"currentReplicas": 2, "desiredReplicas": 3,
                   "currentMetrics": [{"type": "Resource", "resource": {
                       "name": "cpu", "current": {"averageUtilization": 70,
                                                  "averageValue": "70m"}}}],
                   "conditions": [{"type": "AbleToScale", "status": "True"}]}}
    v1 = hpa_v2_to_v1(stored)
    assert v1["spec"] == {"scaleTargetRef": REF, "maxReplicas": 4,
                          "targetCPUUtilizationPercentage": 50}
    assert v1["status"] == {"currentReplicas": 2, "desiredReplicas": 3,
                            "currentCPUUtilizationPercentage": 70}
    assert set(v1["metadata"]["annotations"]) == {
        "team", "autoscaling.alpha.kubernetes.io/metrics",
        "autoscaling.alpha.kubernetes.io/behavior",
        "autoscaling.alpha.kubernetes.io/conditions",
        "autoscaling.alpha.kubernetes.io/current-metrics"}
    back = hpa_v1_to_v2(v1)
    assert back["metadata"]["annotations"] == {"team": "a"}
    assert back["spec"]["metrics"] == [memory, CPU_50]
    assert back["spec"]["behavior"] == behavior
    assert back["status"]["currentMetrics"] == stored["status"]["currentMetrics"]
    assert back["status"]["conditions"] == stored["status"]["conditions"]


def test_a_v2_body_sent_to_v1_is_refused() -> None:
    with pytest.raises(BadRequest, match="expected autoscaling/v1 HorizontalPodAutoscaler"):
        hpa_v1_to_v2({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"})


def _prepared(spec: dict[str, Any]) -> Any:
    model = kinds.decode("HorizontalPodAutoscaler", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    apply_defaults(model)
    return model


def test_defaults() -> None:
    plain = kinds.encode(_prepared({"scaleTargetRef": REF, "maxReplicas": 3}))["spec"]
    assert plain["minReplicas"] == 1
    assert plain["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert "behavior" not in plain  # the controller's classic rules
    given = kinds.encode(_prepared({"scaleTargetRef": REF, "maxReplicas": 3, "behavior": {
        "scaleDown": {"stabilizationWindowSeconds": 10}}}))["spec"]["behavior"]
    assert given == {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 10, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]}}


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"minReplicas": 0}, "spec.minReplicas", "must be greater than or equal to 1"),
    ({"maxReplicas": 0}, "spec.maxReplicas", "must be greater than 0"),
    ({"minReplicas": 4, "maxReplicas": 3}, "spec.maxReplicas",
     "must be greater than or equal to `minReplicas`"),
    ({"scaleTargetRef": {"kind": "Deployment"}}, "spec.scaleTargetRef.name", "Required value"),
    ({"metrics": [{"type": "Memory"}]}, "spec.metrics[0].type", 'Unsupported value: "Memory"'),
    ({"metrics": [{"type": "Resource"}]}, "spec.metrics[0].resource",
     "must populate information for the given metric source"),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 0}}}]},
     "spec.metrics[0].resource.target.averageUtilization", "must be greater than 0"),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "AverageValue", "averageValue": "1", "averageUtilization": 5}}}]},
     "spec.metrics[0].resource.target.averageValue", "may not set both"),
    ({"metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "AverageValue", "averageValue": "-1Mi"}}}]},
     "spec.metrics[0].resource.target.averageValue", "must be positive"),
    ({"metrics": [{"type": "Resource", "pods": {"metric": {"name": "x"}},
                   "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                           "averageUtilization": 5}}}]},
     "spec.metrics[0].pods", "must populate the given metric source only"),
    ({"behavior": {"scaleUp": {"selectPolicy": "Most"}}}, "spec.behavior.scaleUp.selectPolicy",
     'Unsupported value: "Most"'),
    ({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 3601}}},
     "spec.behavior.scaleDown.stabilizationWindowSeconds", "must be less than or equal to 3600"),
    ({"behavior": {"scaleDown": {"policies": []}}}, "spec.behavior.scaleDown.policies",
     "must specify at least one Policy"),
    ({"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 1,
                                             "periodSeconds": 1801}]}}},
     "spec.behavior.scaleUp.policies[0].periodSeconds", "must be less than or equal to 1800"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD)
def test_validation(change: dict[str, Any], field: str, message: str) -> None:
    spec = {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 3, **change}
    causes = validate(_prepared(spec))
    assert any(c.field == field and message in c.message for c in causes), causes


def test_a_valid_hpa_has_no_causes() -> None:
    spec = {"scaleTargetRef": REF, "maxReplicas": 3, "metrics": [CPU_50], "behavior": {}}
    assert validate(_prepared(spec)) == []


def test_targets_column() -> None:
    memory = {"type": "Resource", "resource": {"name": "memory", "target": {
        "type": "AverageValue", "averageValue": "100Mi"}}}
    pods = {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {
        "type": "AverageValue", "averageValue": "10"}}}
    cpu_now = {"type": "Resource", "resource": {"name": "cpu", "current": {
        "averageUtilization": 45, "averageValue": "450m"}}}
    mem_now = {"type": "Resource", "resource": {"name": "memory", "current": {
        "averageValue": "52428800"}}}
    assert format_metrics([CPU_50], [cpu_now]) == "cpu: 45%/50%"
    assert format_metrics([CPU_50], []) == "cpu: <unknown>/50%"
    assert format_metrics([CPU_50], [{"type": ""}]) == "cpu: <unknown>/50%"
    assert format_metrics([memory, CPU_50], [mem_now, cpu_now]) == \
        "memory: 52428800/100Mi, cpu: 45%/50%"
    assert format_metrics([memory, CPU_50, pods], []) == \
        "memory: <unknown>/100Mi, cpu: <unknown>/50% + 1 more..."
    assert format_metrics([], []) == "<none>"


def test_row() -> None:
    hpa = {"metadata": {"name": "web", "creationTimestamp": "2024-05-01T10:00:00Z"},
           "spec": {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5,
                    "metrics": [copy.deepcopy(CPU_50)]},
           "status": {"currentReplicas": 2}}
    now = datetime(2024, 5, 1, 10, 5, tzinfo=UTC)
    assert hpa_cells(hpa, now) == ["web", "Deployment/web", "cpu: <unknown>/50%", "1", 5, 2,
                                   "5m"]
