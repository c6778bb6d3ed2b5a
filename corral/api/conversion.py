"""Versions served by conversion: a kind stored at one version and served at
another too, as kube-apiserver stores autoscaling/v2 HorizontalPodAutoscalers
and serves autoscaling/v1 by converting (kubectl 1.32's `autoscale` creates v1).

    request at v1 ── to_stored ──► registry / store (v2) ── to_served ──► answer at v1

What v1 cannot say travels in annotations, as Kubernetes' conversion does, so a
v2 object read and written back through v1 keeps its other metrics, behavior,
conditions and current metrics:

    autoscaling.alpha.kubernetes.io/metrics          spec.metrics other than cpu Utilization
    autoscaling.alpha.kubernetes.io/behavior         spec.behavior
    autoscaling.alpha.kubernetes.io/conditions       status.conditions
    autoscaling.alpha.kubernetes.io/current-metrics  status.currentMetrics

(Kubernetes writes the metrics annotations in the older v2beta1 shape; corral
writes the v2 shape, which it reads back the same way.)

A request body is checked against its own version's schema before conversion,
as kube-apiserver decodes it: a field v1 does not declare (spec.metrics, a v2
field, included) is unknown there, refused under fieldValidation=Strict with
the version the client sent named, or dropped with a warning.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from corral.api.errors import BadRequest, invalid
from corral.api.resources import BY_KIND, Resource
from corral.objects import Obj, name_of

if TYPE_CHECKING:
    from corral.api.registry.prepare import FieldValidation

METRICS = "autoscaling.alpha.kubernetes.io/metrics"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"


@dataclass(frozen=True)
class Conversion:
    stored: Resource
    to_stored: Callable[[Obj], Obj]
    to_served: Callable[[Obj], Obj]


def _is_cpu_utilization(metric: Any) -> bool:
    resource = metric.get("resource") if isinstance(metric, dict) else None
    return (metric.get("type") == "Resource" and isinstance(resource, dict)
            and resource.get("name") == "cpu"
            and (resource.get("target") or {}).get("averageUtilization") is not None)


def hpa_v2_to_v1(obj: Obj) -> Obj:
    """An autoscaling/v2 HPA as autoscaling/v1 would show it."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec, status = out.get("spec") or {}, out.get("status")
    annotations = dict((out.get("metadata") or {}).get("annotations") or {})
    metrics = spec.pop("metrics", None) or []
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]
    _stash(annotations, METRICS, [m for m in metrics if m is not cpu])
    _stash(annotations, BEHAVIOR, spec.pop("behavior", None))
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        _stash(annotations, CONDITIONS, status.pop("conditions", None))
        _stash(annotations, CURRENT_METRICS, current)
        utilization = next((m["resource"]["current"].get("averageUtilization")
                            for m in current if m.get("type") == "Resource"
                            and (m.get("resource") or {}).get("name") == "cpu"
                            and "current" in m["resource"]), None)
        if utilization is not None:
            status["currentCPUUtilizationPercentage"] = utilization
    if annotations:
        out.setdefault("metadata", {})["annotations"] = annotations
    return out


def hpa_v1_to_v2(obj: Obj) -> Obj:
    """An autoscaling/v1 HPA as the autoscaling/v2 object corral stores."""
    if not isinstance(obj, dict):
        raise BadRequest("the request body must be a JSON object")
    _check_type(obj, "autoscaling/v1")
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    out["kind"] = "HorizontalPodAutoscaler"
    meta = out.get("metadata") if isinstance(out.get("metadata"), dict) else None
    annotations = dict((meta or {}).get("annotations") or {})
    spec = out.get("spec")
    if isinstance(spec, dict):
        metrics = _unstash(annotations, METRICS) or []
        cpu = spec.pop("targetCPUUtilizationPercentage", None)
        if cpu is not None:
            metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": cpu}}})
        if metrics:
            spec["metrics"] = metrics
        behavior = _unstash(annotations, BEHAVIOR)
        if behavior is not None:
            spec["behavior"] = behavior
    status = out.get("status")
    conditions, current = _unstash(annotations, CONDITIONS), _unstash(annotations, CURRENT_METRICS)
    if isinstance(status, dict):
        utilization = status.pop("currentCPUUtilizationPercentage", None)
        if current is None and utilization is not None:
            current = [{"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": utilization}}}]
        if current:
            status["currentMetrics"] = current
        if conditions:
            status["conditions"] = conditions
    if annotations and meta is not None:
        meta["annotations"] = annotations
    elif meta is not None:
        meta.pop("annotations", None)
    return out


def _check_type(obj: Obj, api_version: str) -> None:
    version, kind = obj.get("apiVersion"), obj.get("kind")
    if version not in (None, "", api_version) or kind not in (None, "", "HorizontalPodAutoscaler"):
        raise BadRequest(
            f"the API version in the data ({version}) and kind ({kind}) do not match the "
            f"request: expected {api_version} HorizontalPodAutoscaler")


def _stash(annotations: dict[str, str], key: str, value: Any) -> None:
    if value:
        annotations[key] = json.dumps(value, separators=(",", ":"))


def _unstash(annotations: dict[str, str], key: str) -> Any:
    raw = annotations.pop(key, None)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest(f"metadata.annotations[{key}]: invalid JSON") from None


_CONVERSIONS: dict[tuple[str, str, str], Conversion] = {
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): Conversion(
        BY_KIND["HorizontalPodAutoscaler"], hpa_v1_to_v2, hpa_v2_to_v1),
}


def conversion_for(res: Resource) -> Conversion | None:
    """How ``res`` is converted to its stored version, or None when it is stored as is."""
    return _CONVERSIONS.get((res.group, res.version, res.kind))


def stored(res: Resource) -> Resource:
    """The resource ``res``'s objects are stored as."""
    conversion = conversion_for(res)
    return conversion.stored if conversion is not None else res


def to_stored(res: Resource, obj: Obj, validation: FieldValidation = "Warn",
              warnings: list[str] | None = None) -> Obj:
    """``obj``, sent at ``res``'s version, as stored. Fields that version does
    not declare are refused (Strict) or dropped, each added to ``warnings`` (Warn)."""
    conversion = conversion_for(res)
    if conversion is None:
        return obj
    extras = _unknown_at_served_version(res, obj)
    if extras and validation == "Strict":
        listed = ", ".join(f'unknown field "{f}"' for f in extras)
        raise BadRequest(f'{res.kind} in version "{res.version}" cannot be handled as a '
                         f"{res.kind}: strict decoding error: {listed}",
                         kind=res.kind, group=res.group)
    if validation == "Warn" and warnings is not None:
        warnings += [f'unknown field "{f}"' for f in extras]
    return conversion.to_stored(obj)


def _unknown_at_served_version(res: Resource, obj: Obj) -> list[str]:
    """Wire paths of the fields of ``obj`` that ``res``'s own model does not
    declare, removed from ``obj`` (v2 must not take them as its own)."""
    from corral.api.kinds import unknown_fields
    from corral.api.kinds.catalog import model_of
    from corral.api.kinds.codec import causes_of

    model = model_of(res.api_version, res.kind)
    if model is None or not isinstance(obj, dict) \
            or obj.get("apiVersion") not in (None, "", res.api_version):
        return []  # another version's body: the conversion refuses it
    try:
        decoded = model.model_validate(obj)
    except ValidationError as err:
        raise invalid(res.kind, name_of(obj) if isinstance(obj.get("metadata"), dict) else "",
                      causes_of(model, err), res.group) from None
    extras = unknown_fields(decoded)
    if extras:
        _drop_extras(decoded, obj)
    return extras


def _drop_extras(model: BaseModel, data: dict[str, Any]) -> None:
    for key in model.model_extra or {}:
        data.pop(key, None)
    for name, field in type(model).model_fields.items():
        _drop_extras_in(getattr(model, name), data.get(field.alias or name))


def _drop_extras_in(value: Any, data: Any) -> None:
    if isinstance(value, BaseModel) and isinstance(data, dict):
        _drop_extras(value, data)
    elif isinstance(value, list) and isinstance(data, list):
        for item, raw in zip(value, data, strict=False):
            _drop_extras_in(item, raw)
    elif isinstance(value, dict) and isinstance(data, dict):
        for key, item in value.items():
            _drop_extras_in(item, data.get(key))


def to_served(res: Resource, obj: Obj) -> Obj:
    """``obj`` (as stored) at ``res``'s version; anything that is not such an
    object (a Status) passes unchanged."""
    conversion = conversion_for(res)
    if conversion is None or obj.get("kind") != res.kind:
        return obj
    return conversion.to_served(obj)
