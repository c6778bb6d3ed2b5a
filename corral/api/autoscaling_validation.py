"""Validation of autoscaling/v2 HorizontalPodAutoscalers, with the rules and the
wording of Kubernetes' pkg/apis/autoscaling/validation (it runs after defaults,
as there: a behavior that is given already has its policies)."""

from __future__ import annotations

from corral.api import names
from corral.api.field_errors import FieldErrors
from corral.api.kinds.autoscaling import (
    METRIC_SOURCE_TYPES,
    POLICY_TYPES,
    SELECT_POLICIES,
    TARGET_TYPES,
    CrossVersionObjectReference,
    HorizontalPodAutoscaler,
    HPAScalingRules,
    MetricIdentifier,
    MetricSpec,
    MetricTarget,
)
from corral.api.pod_validation import validate_label_selector
from corral.api.quantity import parse_quantity

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
# Which field of a MetricSpec each type fills.
_SOURCE_FIELD = {"Object": "object", "Pods": "pods", "Resource": "resource",
                 "ContainerResource": "containerResource", "External": "external"}


def validate_hpa(hpa: HorizontalPodAutoscaler, old: HorizontalPodAutoscaler | None,
                 errs: FieldErrors) -> None:
    spec = hpa.spec
    if spec.min_replicas is not None and spec.min_replicas < 1:
        errs.invalid("spec.minReplicas", spec.min_replicas,
                     "must be greater than or equal to 1")
    if spec.max_replicas < 1:
        errs.invalid("spec.maxReplicas", spec.max_replicas, "must be greater than 0")
    if spec.min_replicas is not None and spec.max_replicas < spec.min_replicas:
        errs.invalid("spec.maxReplicas", spec.max_replicas,
                     "must be greater than or equal to `minReplicas`")
    validate_object_reference(spec.scale_target_ref, "spec.scaleTargetRef", errs)
    for i, metric in enumerate(spec.metrics or []):
        _validate_metric(metric, f"spec.metrics[{i}]", errs)
    if spec.behavior is not None:
        _validate_rules(spec.behavior.scale_up, "spec.behavior.scaleUp", errs)
        _validate_rules(spec.behavior.scale_down, "spec.behavior.scaleDown", errs)


def validate_object_reference(ref: CrossVersionObjectReference, path: str,
                              errs: FieldErrors) -> None:
    for field, value in (("kind", ref.kind), ("name", ref.name)):
        if not value:
            errs.required(f"{path}.{field}")
        else:
            errs.each(f"{path}.{field}", value, names.path_segment(value))


def _validate_metric(metric: MetricSpec, path: str, errs: FieldErrors) -> None:
    if not metric.type:
        errs.required(f"{path}.type", "must specify a metric source type")
    elif metric.type not in METRIC_SOURCE_TYPES:
        errs.not_supported(f"{path}.type", metric.type, METRIC_SOURCE_TYPES)
    present = [wire for wire, value in (
        ("object", metric.object), ("pods", metric.pods), ("resource", metric.resource),
        ("containerResource", metric.container_resource), ("external", metric.external),
    ) if value is not None]
    expected = _SOURCE_FIELD.get(metric.type)
    if expected is not None and expected not in present:
        errs.required(f"{path}.{expected}", "must populate information for the given "
                      "metric source")
    if len(present) != 1:
        for wire in present:
            if wire != expected:
                errs.forbidden(f"{path}.{wire}", "must populate the given metric source only")
    _validate_source(metric, path, errs)


def _validate_source(metric: MetricSpec, path: str, errs: FieldErrors) -> None:
    if metric.resource is not None:
        _validate_resource_target(metric.resource.name, metric.resource.target,
                                  f"{path}.resource", errs)
    if metric.container_resource is not None:
        source = metric.container_resource
        where = f"{path}.containerResource"
        _validate_resource_target(source.name, source.target, where, errs)
        if not source.container:
            errs.required(f"{where}.container", "must specify a container")
        else:
            errs.each(f"{where}.container", source.container,
                      names.dns1123_label(source.container))
    if metric.pods is not None:
        _validate_identifier(metric.pods.metric, f"{path}.pods.metric", errs)
        _validate_target(metric.pods.target, f"{path}.pods.target", errs)
        if metric.pods.target.average_value is None:
            errs.required(f"{path}.pods.target.averageValue",
                          "must specify a positive target averageValue")
    if metric.object is not None:
        validate_object_reference(metric.object.described_object,
                                  f"{path}.object.describedObject", errs)
        _validate_identifier(metric.object.metric, f"{path}.object.metric", errs)
        _validate_value_target(metric.object.target, f"{path}.object.target", errs)
    if metric.external is not None:
        _validate_identifier(metric.external.metric, f"{path}.external.metric", errs)
        _validate_value_target(metric.external.target, f"{path}.external.target", errs)


def _validate_resource_target(name: str, target: MetricTarget, path: str,
                              errs: FieldErrors) -> None:
    if not name:
        errs.required(f"{path}.name", "must specify a resource name")
    else:
        errs.each(f"{path}.name", name, names.qualified_name(name))
    _validate_target(target, f"{path}.target", errs)
    if target.average_utilization is None and target.average_value is None:
        errs.required(f"{path}.target.averageUtilization",
                      "must set either a target raw value or a target utilization")
    if target.average_utilization is not None and target.average_value is not None:
        errs.forbidden(f"{path}.target.averageValue",
                       "may not set both a target raw value and a target utilization")


def _validate_value_target(target: MetricTarget, path: str, errs: FieldErrors) -> None:
    _validate_target(target, path, errs)
    if target.value is None and target.average_value is None:
        errs.required(f"{path}.averageValue", "must set either a target value or averageValue")


def _validate_identifier(metric: MetricIdentifier, path: str, errs: FieldErrors) -> None:
    if not metric.name:
        errs.required(f"{path}.name", "must specify a metric name")
    else:
        errs.each(f"{path}.name", metric.name, names.path_segment(metric.name))
    if metric.selector is not None:
        validate_label_selector(metric.selector, f"{path}.selector", errs)


def _validate_target(target: MetricTarget, path: str, errs: FieldErrors) -> None:
    if not target.type:
        errs.required(f"{path}.type", "must specify a metric target type")
    elif target.type not in TARGET_TYPES:
        errs.invalid(f"{path}.type", target.type,
                     "must be either Utilization, Value, or AverageValue")
    for field, value in (("value", target.value), ("averageValue", target.average_value)):
        if value is None:
            continue
        try:
            positive = parse_quantity(value) > 0
        except ValueError:
            errs.invalid(f"{path}.{field}", value, "quantities must match the regular "
                         "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
            continue
        if not positive:
            errs.invalid(f"{path}.{field}", value, "must be positive")
    if target.average_utilization is not None and target.average_utilization < 1:
        errs.invalid(f"{path}.averageUtilization", target.average_utilization,
                     "must be greater than 0")


def _validate_rules(rules: HPAScalingRules | None, path: str, errs: FieldErrors) -> None:
    if rules is None:
        return
    window = rules.stabilization_window_seconds
    if window is not None and window < 0:
        errs.invalid(f"{path}.stabilizationWindowSeconds", window,
                     "must be greater than or equal to zero")
    if window is not None and window > MAX_STABILIZATION_WINDOW_SECONDS:
        errs.invalid(f"{path}.stabilizationWindowSeconds", window,
                     f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}")
    errs.one_of(f"{path}.selectPolicy", rules.select_policy, SELECT_POLICIES)
    if not rules.policies:
        errs.required(f"{path}.policies", "must specify at least one Policy")
    for i, policy in enumerate(rules.policies or []):
        where = f"{path}.policies[{i}]"
        if policy.type not in POLICY_TYPES:
            errs.not_supported(f"{where}.type", policy.type, POLICY_TYPES)
        if policy.value <= 0:
            errs.invalid(f"{where}.value", policy.value, "must be greater than zero")
        if policy.period_seconds <= 0:
            errs.invalid(f"{where}.periodSeconds", policy.period_seconds,
                         "must be greater than zero")
        if policy.period_seconds > MAX_PERIOD_SECONDS:
            errs.invalid(f"{where}.periodSeconds", policy.period_seconds,
                         f"must be less than or equal to {MAX_PERIOD_SECONDS}")
